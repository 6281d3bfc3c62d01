"""One APIRouter per resource: embed, retrieve, lift, clips, health (probes, metrics, info), admin, and pages
(the web page and the docs)."""
