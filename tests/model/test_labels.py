from model.runtime.labels import normalise_label


def test_case_space_and_separators_do_not_matter():
    assert normalise_label("Walk Turn_Left") == "walk-turn-left"
    assert normalise_label("  wave_left hand ") == "wave-left-hand"
    assert normalise_label("dataset-2") == "dataset-2"
