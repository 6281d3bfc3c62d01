"""The generalisation section of the evaluation report: markdown, plot and summary sentence from the
``generalisation`` dict of ``eval.json`` (``index_builder.evaluation.generalisation``); nothing here computes a
metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index_builder.evaluation.report.markdown import table_lines

GENERALISATION_PLOT = "eval_generalisation.png"
KEYS = {"gt_2d/h36m_rig": "GT 2D, rig", "gt_2d/random": "GT 2D, random", "noisy_2d/h36m_rig": "noisy 2D, rig",
        "noisy_2d/random": "noisy 2D, random"}
LIFTER_NAMES = {"unihpr": "UniHPR", "nn_2d": "2D nearest neighbour",
                "baseline_martinez": "Martinez (same budget, recipe)",
                "unseen_motion_martinez": "Martinez (same subset)",
                "all_martinez": "Martinez (same budget, every augmentation)",
                "combined_martinez": "Martinez (same budget, combined recipe)",
                "martinez_budget": "Martinez (same budget)", "martinez_converged": "Martinez (converged)"}


def _name(lifter: str) -> str:
    return LIFTER_NAMES.get(lifter, f"UniHPR arm `{lifter}`")


def _protocol_name(protocol: str) -> str:
    return {"bandai_held_out": "Bandai held-out (reference)", "unseen_capture": "unseen capture"}.get(
        protocol, protocol.replace("body_", "other body: "))


def mean_pa(errors: dict, lifter: str) -> float:
    """PA-MPJPE (mm) of one lifter averaged over the four conditions and camera set-ups."""
    return float(np.mean([errors[key][lifter]["pa_mpjpe_mm"] for key in KEYS]))


def generalisation_sentence(g: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if not g or g.get("status") == "skipped":
        return None
    p = g["protocols"]
    bodies = [name for name in p if name.startswith("body_")]
    ours = {name: mean_pa(p[name]["errors"], "unihpr") for name in p}
    return (f"On poses the training never shaped, lifting error grows from {ours['bandai_held_out']:.1f} mm "
            f"PA-MPJPE (Bandai held-out) to {min(ours[b] for b in bodies):.1f}-{max(ours[b] for b in bodies):.1f} mm "
            f"on other rigs' bodies and {ours['unseen_capture']:.1f} mm on an unseen capture.")


def _protocol_rows(protocols: dict, lifters: list[str]) -> list[list]:
    rows = []
    for name, x in protocols.items():
        for lifter in lifters:
            if lifter in x["errors"][next(iter(KEYS))]:
                rows.append([_protocol_name(name), x["poses"], _name(lifter),
                             *(x["errors"][key][lifter]["pa_mpjpe_mm"] for key in KEYS), mean_pa(x["errors"], lifter)])
    return rows


def generalisation_markdown(r: dict, plot: str | None) -> list[str]:
    g = r.get("generalisation")
    out = ["## Generalisation: other bodies, an unseen capture, unseen motion", ""]
    if not g or g.get("status") == "skipped":
        return out + [(g or {}).get("note", "Not evaluated in this run."), ""]
    out += [r["protocols"]["generalisation"] + ".", "",
            "What shaped these numbers: every view comes from our cameras (the H36M-like ring and random cameras, "
            "not the published real rig); every rig's joints are mapped to ours by our joint formulas; the other "
            "bodies move as Bandai's held-out motion does, only their bone lengths are real. Real cameras with "
            "these bodies, and real photos of other people, were not measured here.", ""]
    lifters = ["unihpr", *([g["baseline_of_record"]] if g["baseline_of_record"] else []), "nn_2d"]
    header = ["protocol", "poses", "lifter", *(f"PA-MPJPE {v}" for v in KEYS.values()), "mean"]
    out += ["The default model (PA-MPJPE, mm):", ""] + table_lines(header, _protocol_rows(g["protocols"], lifters))
    out += [""]
    if not g["baseline_of_record"]:
        out += ["No Martinez checkpoint of this run was available, so the ratio to the baseline of record (target "
                f"<= {g['target_ratio']:g}x) is measured in the study below, at its budget.", ""]
    for name, x in g["protocols"].items():
        if "length_ratio_to_bandai" in x:
            ratios = x["length_ratio_to_bandai"]
            out.append(f"- {_protocol_name(name)}: bone lengths / Bandai's: hip {ratios['r_hip']:.2f}, shoulder "
                       f"{ratios['r_shoulder']:.2f}, thigh {ratios['r_knee']:.2f}, shin {ratios['r_ankle']:.2f}, "
                       f"upper arm {ratios['r_elbow']:.2f}, forearm {ratios['r_wrist']:.2f}, spine "
                       f"{ratios['spine']:.2f}.")
    out += [""]
    out += _study_markdown(g.get("study", {}), g["target_ratio"])
    if plot:
        out += [f"![generalisation study]({plot})", ""]
    return out


def _study_markdown(s: dict, target: float) -> list[str]:
    if s.get("status") != "computed":
        return [s.get("note", "No generalisation study in this run."), ""]
    budget = s["budget"]
    out = [f"### The study: augmentation ablation and extra mocap at the study budget ({budget['align_steps']} + "
           f"{budget['decode_steps']} steps of {budget['batch_size']} poses, one seed per arm)", "",
           "Mean PA-MPJPE (mm) over GT and noisy 2D, rig and random cameras; each arm differs from `baseline` by "
           "its overrides only (`unihpr-build generalise`). `extra_mocap` trains on the CMU skeleton's bodies, so "
           "`other body: cmu` is not unseen for it.", ""]
    protocols = list(s["errors"])
    lifters = [*s["arms"], *(x for x in s["errors"][protocols[0]][next(iter(KEYS))] if x not in s["arms"])]
    rows = [[_name(lifter) if lifter not in s["arms"] else f"`{lifter}`",
             *(mean_pa(s["errors"][p], lifter) for p in protocols)] for lifter in lifters]
    out += table_lines(["arm", *(_protocol_name(p) for p in protocols)], rows) + [""]
    if "baseline_martinez" in lifters:
        # Each arm against the Martinez trained on the same poses and augmentation where the study has one, else
        # against the recipe's.
        against = {arm: f"{arm}_martinez" if f"{arm}_martinez" in lifters else "baseline_martinez"
                   for arm in s["arms"]}
        ratio_rows = [[f"`{arm}`", _name(b), *(f"{mean_pa(e, arm) / mean_pa(e, b):.2f}"
                                               for e in (s["errors"][p] for p in protocols))]
                      for arm, b in against.items()]
        out += [f"UniHPR / Martinez at the same budget (target <= {target:g}x on other bodies and the unseen "
                "capture):", ""]
        out += table_lines(["arm", "against", *(_protocol_name(p) for p in protocols)], ratio_rows) + [""]
    motion = s.get("unseen_motion")
    if motion:
        out += [f"Unseen motion: {motion['description']} ({motion['poses']} poses; contents: "
                f"{', '.join(motion['contents'])}). PA-MPJPE, mm:", ""]
        rows = [[_name(lifter) if lifter != "unseen_motion" else "UniHPR trained without them",
                 *(motion["errors"][key][lifter]["pa_mpjpe_mm"] for key in KEYS), mean_pa(motion["errors"], lifter)]
                for lifter in motion["errors"][next(iter(KEYS))]]
        out += table_lines(["lifter", *KEYS.values(), "mean"], rows) + [""]
        if "unseen_motion_martinez" in motion["errors"][next(iter(KEYS))]:
            ratio = mean_pa(motion["errors"], "unseen_motion") / mean_pa(motion["errors"], "unseen_motion_martinez")
            out += [f"UniHPR / Martinez on the same subset: {ratio:.2f} (target <= {target:g}).", ""]
    return out


def plot_generalisation(g: dict, path: Path, save) -> None:
    """Mean PA-MPJPE per protocol: the study's arms and baselines where the study ran, else the default model's."""
    import matplotlib.pyplot as plt

    study = g.get("study", {})
    if study.get("status") == "computed":
        table = study["errors"]
    else:
        table = {name: x["errors"] for name, x in g["protocols"].items()}
    protocols = list(table)
    lifters = list(table[protocols[0]][next(iter(KEYS))])
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(lifters)
    x = np.arange(len(protocols))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    for i, lifter in enumerate(lifters):
        baseline = lifter == "nn_2d" or lifter.endswith("_martinez") or lifter.startswith("martinez")
        ax.bar(x + (i - (len(lifters) - 1) / 2) * width, [mean_pa(table[p], lifter) for p in protocols], width,
               label=_name(lifter), color=colours[i % 20], hatch="//" if baseline else None, edgecolor="white")
    ax.set_xticks(x, [_protocol_name(p) for p in protocols], rotation=15, ha="right")
    ax.set_ylabel("mean PA-MPJPE, mm")
    ax.set_title("Lifting on bodies and a capture the training never saw (mean of GT / noisy 2D, rig / random "
                 "cameras; hatched: baselines)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, path)
