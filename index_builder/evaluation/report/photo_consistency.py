"""The photo-consistency section of the evaluation report: summary sentence and markdown from the
``photo_consistency`` dict of ``eval.json`` (``index_builder.evaluation.photo_consistency``); nothing here computes a
metric."""

from __future__ import annotations

from index_builder.evaluation.report.markdown import met, section_heading, sentence, table, targets_table


def consistency_sentence(c: dict) -> str | None:
    """One sentence of the report's summary, or None when the section was not computed."""
    if c.get("status") != "computed":
        return None
    if not c["people"]:
        return "Photo consistency: no labelled person could be warped and found again, so it is not measured."
    a, plain = c["angle_deg"], c["angle_without_crop_deg"]
    return (f"Turning the camera of a real photo by {c['rotation_deg']['median']:.1f} degrees (median, "
            f"{c['people']} people) rotates the lifted pose consistently to within {a['median']:.2f} degrees "
            f"median ({a['max']:.2f} max; without the perspective crop {plain['median']:.2f}); target "
            f"{c['target']['short']}: {met(c['target'])}.")


def consistency_markdown(r: dict) -> list[str]:
    """The section (absent from older results)."""
    c = r.get("photo_consistency")
    out, computed = section_heading(c, "Photo consistency (a known camera rotation of real photos)")
    if not computed:
        return out
    skipped = ", ".join(f"{k}: {v}" for k, v in c["skipped"].items())
    out += [sentence(r["protocols"]["photo_consistency"]), "",
            f"{c['people']} people of {c['found']} found of {c['labelled_people']} labelled (skipped: {skipped}); "
            f"intrinsics: {', '.join(c['intrinsics_sources']) or '-'} (default_fov: 60 degree horizontal field of view "
            "of the photo's width; exif: FocalLengthIn35mmFilm over the long side, as the service); directions: "
            f"{', '.join(f'{k} {v}' for k, v in c['directions'].items())}. The angle without the crop is that of the "
            "pre-crop image path (image features of the raw pixels), for reference.", ""]
    rows = [[f"`{p['photo']}` #{p['person']}", p["direction"], f"{p['rotation_deg']:.1f}",
             f"{p['off_axis_before_deg']:.1f} -> {p['off_axis_after_deg']:.1f}", f"{p['angle_deg']:.2f}",
             f"{p['angle_without_crop_deg']:.2f}"] for p in c["per_person"]]
    rows.append(["median / max", "", f"{c['rotation_deg']['median']} / {c['rotation_deg']['max']}", "",
                 f"{c['angle_deg']['median']} / {c['angle_deg']['max']}",
                 f"{c['angle_without_crop_deg']['median']} / {c['angle_without_crop_deg']['max']}"])
    out += [table(["person", "direction", "rotation (deg)", "box centre off axis (deg)", "misalignment (deg)",
                   "without crop (deg)"], rows), "", targets_table([c["target"]]), ""]
    return out
