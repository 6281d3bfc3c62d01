"""One APIRouter per resource: embed, retrieve, lift, health (probes, metrics, info), admin."""
