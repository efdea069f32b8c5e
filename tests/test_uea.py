"""symglep.uea: the .ts parser on hand-written files, and the UEA/UCR sets shipped in sktime's wheel."""

import importlib.util

import numpy as np
import pytest

from symglep import uea
from symglep.errors import SymglepError

HEADER = """# a comment
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true up down
@data
"""


def write(tmp_path, text, name="toy.ts"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_equal_length_two_dimensions_exact_values(tmp_path):
    path = write(tmp_path, HEADER + "1,2,3:4,5,6:down\n\n-1.5,0,2e-3:7,8,9:up\n# between cases\n0.25,0.5,0.75:1,1,1:down\n")
    series, labels, classes = uea.read_ts(path)
    assert classes == ["up", "down"]
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 1]
    assert len(series) == 3 and all(s.dtype == np.float64 and s.shape == (3, 2) for s in series)
    np.testing.assert_array_equal(series[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(series[1], [[-1.5, 7], [0, 8], [2e-3, 9]])
    np.testing.assert_array_equal(series[2], [[0.25, 1], [0.5, 1], [0.75, 1]])


def test_variable_length_cases(tmp_path):
    text = "@problemName V\n@TIMESTAMPS FALSE\n@equalLength false\n@classlabel true a b c\n@DATA\n" \
           "1,2:10,20:c\n3:30:a\n4,5,6,7:40,50,60,70:b\n"
    series, labels, classes = uea.read_ts(write(tmp_path, text))
    split = uea.Split(series, labels)
    assert split.lengths.dtype == np.int64 and split.lengths.tolist() == [2, 1, 4]
    assert split.channels == 2
    assert labels.tolist() == [2, 0, 1] and classes == ["a", "b", "c"]
    np.testing.assert_array_equal(series[1], [[3, 30]])
    np.testing.assert_array_equal(series[2][:, 0], [4, 5, 6, 7])
    np.testing.assert_array_equal(series[2][:, 1], [40, 50, 60, 70])


def test_missing_values_are_interpolated(tmp_path):
    text = "@missing true\n@classLabel true x\n@data\n" \
           "1,?,3,?,?,9:?,?,5,?,?,?:?,?,?,?,?,?:x\n"
    (series,), _, _ = uea.read_ts(write(tmp_path, text))
    np.testing.assert_array_equal(series[:, 0], [1, 2, 3, 5, 7, 9])  # linear inside
    np.testing.assert_array_equal(series[:, 1], [5, 5, 5, 5, 5, 5])  # nearest value at the ends
    np.testing.assert_array_equal(series[:, 2], np.zeros(6))  # nothing valid: zeros


def test_given_classes_map_labels_and_refuse_unknown_ones(tmp_path):
    path = write(tmp_path, "@classLabel true b a\n@data\n1:a\n2:b\n")
    _, labels, classes = uea.read_ts(path, ["a", "b"])
    assert classes == ["a", "b"] and labels.tolist() == [0, 1]
    with pytest.raises(SymglepError, match=r"line 4: class label 'b' is not one of a"):
        uea.read_ts(path, ["a"])


@pytest.mark.parametrize("text, message", [
    ("@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n", r"line 1: @timeStamps true"),
    ("@classLabel true\n@data\n1:a\n", r"line 1: @classLabel true lists no class labels"),
    ("@classLabel true a b a\n@data\n1:a\n", r"line 1: @classLabel lists a label twice"),
    ("@classLabel true a\n@dimensions two\n@data\n1:a\n", r"line 2: @dimensions expects a positive integer"),
    ("@classLabel true a\n@data\n1,2:3,4:a\n5,6:7,8:a\n1,2:a\n", r"line 5: the case has 1 dimensions, the others 2"),
    ("@dimensions 2\n@classLabel true a\n@data\n1,2:a\n", r"line 4: the case has 1 dimensions, the others 2"),
    ("@classLabel true a\n@data\n1,2,3:4,5:a\n", r"line 3: the dimensions of the case differ in length \(3, 2\)"),
    ("@classLabel true a\n@data\n1,2:3,4:a\n1,abc:3,4:a\n", r"line 4: value 'abc' is not a number"),
    ("@classLabel true a\n@data\n1,,2:a\n", r"line 3: value '' is not a number"),
    ("@classLabel true a\n@data\n1,inf:a\n", r"line 3: an infinite value"),
    ("@problemName R\n@targetLabel true\n@data\n1,2:0.5\n", r"line 3: a regression set"),
    ("@problemName R\n@data\n1,2:0.5\n", r"line 2: no '@classLabel true'"),
    ("@classLabel false\n@data\n1,2\n", r"line 2: no '@classLabel true'"),
    ("@classLabel true a\n1,2:a\n", r"line 2: data before the @data line"),
    ("@classLabel true a\n@data\n1,2\n", r"line 3: no class label"),
    ("@classLabel true a\n@data\n", r"no cases after @data"),
    ("@classLabel true a\n", r"no @data line"),
])
def test_refused_files_name_file_line_and_reason(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SymglepError, match=message) as info:
        uea.read_ts(path)
    assert str(info.value).startswith(path) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(SymglepError, match="cannot read"):
        uea.read_ts(str(tmp_path / "absent.ts"))


def test_without_sktime_load_says_how_to_install(monkeypatch):
    monkeypatch.setattr(uea, "data_folder", lambda: None)
    assert uea.available() == []
    with pytest.raises(SymglepError, match=r"pip install 'symglep\[uea\]'"):
        uea.load("BasicMotions")


def test_a_set_on_disk_is_read_from_its_folder_or_its_train_file(tmp_path, monkeypatch):
    """Any UEA/UCR download: uea:PATH/NAME (a folder holding NAME_TRAIN.ts and NAME_TEST.ts) or the path of
    NAME_TRAIN.ts, with or without sktime."""
    monkeypatch.setattr(uea, "data_folder", lambda: None)
    folder = tmp_path / "Toy"
    folder.mkdir()
    write(folder, HEADER + "1,2,3:4,5,6:down\n-1,0,2:7,8,9:up\n", "Toy_TRAIN.ts")
    write(folder, HEADER + "0,0,1:1,1,1:up\n", "Toy_TEST.ts")
    for spec in (str(folder), str(folder / "Toy_TRAIN.ts"), str(folder) + "/", str(folder / "Toy")):
        data = uea.load(spec)
        assert data.name == "Toy" and data.classes == ["up", "down"] and data.source == str(folder)
        assert data.train.labels.tolist() == [1, 0] and data.test.labels.tolist() == [0]
        np.testing.assert_array_equal(data.test.series[0], [[0, 1], [0, 1], [1, 1]])
    (folder / "Toy_TEST.ts").unlink()
    with pytest.raises(SymglepError, match="no file .*Toy_TEST.ts"):
        uea.load(str(folder))
    with pytest.raises(SymglepError, match="or give a set on disk, uea:PATH/NAME"):
        uea.load("BasicMotions")


def test_a_declared_class_that_no_series_has_is_dropped(tmp_path, monkeypatch):
    """Probe r1 (session 37): a header that declares a class no series has made the head one output wider
    (start loss ln 3 on a two-class set), where a labelled DATA.npz keeps the labels that occur. The loader
    drops such a class, keeps the header's order of the others and maps the labels to it; a class that only
    the test split has stays, for the classifier to refuse."""
    monkeypatch.setattr(uea, "data_folder", lambda: None)
    folder = tmp_path / "Toy"
    folder.mkdir()
    header = HEADER.replace("@classLabel true up down", "@classLabel true left up down")
    write(folder, header + "1,2,3:4,5,6:down\n-1,0,2:7,8,9:up\n", "Toy_TRAIN.ts")
    write(folder, header + "0,0,1:1,1,1:down\n", "Toy_TEST.ts")
    data = uea.load(str(folder))
    assert data.classes == ["up", "down"] and data.train.labels.tolist() == [1, 0] and data.test.labels.tolist() == [1]
    write(folder, header + "0,0,1:1,1,1:left\n", "Toy_TEST.ts")
    data = uea.load(str(folder))
    assert data.classes == ["left", "up", "down"] and data.train.labels.tolist() == [2, 1]

# --- the sets shipped in sktime's wheel ---


@pytest.fixture(scope="module")
def shipped():
    # importorskip's test without its import (2 s): symglep.uea only locates sktime's folder
    if importlib.util.find_spec("sktime") is None:
        pytest.skip("sktime is not installed (pip install 'symglep[uea]')")
    assert uea.data_folder() is not None


def check_split(split, classes, channels):
    assert split.channels == channels
    assert all(s.dtype == np.float64 and s.ndim == 2 and s.shape[1] == channels for s in split.series)
    assert all(np.isfinite(s).all() for s in split.series)
    assert split.labels.dtype == np.int64 and len(split.labels) == len(split.series)
    assert split.labels.min() >= 0 and split.labels.max() < len(classes)


def test_basic_motions(shipped):
    data = uea.load("BasicMotions")
    assert data.name == "BasicMotions" and data.source.endswith("BasicMotions")
    assert data.classes == ["Standing", "Running", "Walking", "Badminton"]
    assert len(data.train.series) == 40 and len(data.test.series) == 40
    for split in (data.train, data.test):
        check_split(split, data.classes, 6)
        assert split.lengths.tolist() == [100] * 40
    assert sorted(set(data.train.labels.tolist())) == [0, 1, 2, 3]


def test_japanese_vowels(shipped):
    data = uea.load("JapaneseVowels")
    assert len(data.classes) == 9
    assert len(data.train.series) == 270 and len(data.test.series) == 370
    lengths = np.concatenate([data.train.lengths, data.test.lengths])
    assert lengths.min() >= 7 and lengths.max() <= 29 and len(set(lengths.tolist())) > 1
    for split in (data.train, data.test):
        check_split(split, data.classes, 12)
    assert sorted(set(data.train.labels.tolist())) == list(range(9))


def test_available_lists_classification_sets_only(shipped):
    names = uea.available()
    assert names == sorted(names)
    assert {"BasicMotions", "JapaneseVowels"} <= set(names)
    # regression (Tecator, Covid3Month) and forecasting (Airline: a .csv) sets are not listed
    assert not {"Tecator", "Covid3Month", "Airline", "Longley"} & set(names)


def test_unknown_name_lists_the_available_sets(shipped):
    with pytest.raises(SymglepError, match=r"unknown UEA data set 'NoSuchSet'; available: .*BasicMotions.*JapaneseVowels"):
        uea.load("NoSuchSet")
    with pytest.raises(SymglepError, match="a folder NAME/ holding NAME_TRAIN.ts and NAME_TEST.ts"):
        uea.load("../BasicMotions")  # a path, not a shipped name: and no such folder here
    with pytest.raises(SymglepError, match="did you mean 'BasicMotions'\\? \\(names are case-sensitive\\)"):
        uea.load("basicmotions")


def test_a_shipped_regression_set_says_why_it_is_not_read(shipped):
    with pytest.raises(SymglepError, match=r"Tecator_TRAIN.ts, line \d+: a regression set \(@targetLabel\): only "
                                           "classification sets are read"):
        uea.load("Tecator")


def test_load_does_not_import_sktime(shipped):
    import subprocess
    import sys
    code = ("import sys; from symglep import uea; d = uea.load('BasicMotions'); "
            "print(len(d.train.series), 'sktime' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["40", "False", "False"]


def test_a_uea_set_whose_classes_no_head_can_learn_is_refused(tmp_path, monkeypatch):
    """The uea: path trained a one-class set (accuracy 1.0) and scored test cases of a class no training case has
    as errors; the npz path refused both (new-user probe). Both paths share the refusal now, naming the classes."""
    from symglep.classification import require_classes

    monkeypatch.setattr(uea, "data_folder", lambda: None)
    folder = tmp_path / "Toy"
    folder.mkdir()
    write(folder, HEADER + "1,2,3:4,5,6:down\n-1,0,2:7,8,9:down\n", "Toy_TRAIN.ts")
    write(folder, HEADER + "0,0,1:1,1,1:up\n", "Toy_TEST.ts")
    data = uea.load(str(folder))
    with pytest.raises(SymglepError, match=r"uea:Toy: the training series hold one class only \(down\)"):
        require_classes("uea:Toy", data.train.labels, data.test.labels, data.classes)
    with pytest.raises(SymglepError, match=r"x: test series hold class\(es\) up that no training series has"):
        require_classes("x", [1, 2], [0, 1], ["up", "down", "left"])
    require_classes("x", [0, 1], [1, 0], ["up", "down"])


def test_sets_on_disk_that_cannot_be_read_say_what_is_there(tmp_path, monkeypatch):
    """A missing folder said 'give a set's name...', a folder holding another set's files named only the file
    it missed, and a folder in the working directory given without './' was 'unknown' (new-user probe)."""
    monkeypatch.setattr(uea, "data_folder", lambda: None)
    monkeypatch.setattr(uea, "data_folders", lambda: [])
    with pytest.raises(SymglepError, match=r"uea:.*nonexist: no such file or folder"):
        uea.load(str(tmp_path / "nonexist"))
    flat = tmp_path / "flat"
    flat.mkdir()
    write(flat, HEADER + "1,2,3:4,5,6:down\n", "Other_TRAIN.ts")
    with pytest.raises(SymglepError, match=r"no file .*flat_TRAIN.ts .*; the folder holds Other_TRAIN.ts"):
        uea.load(str(flat))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SymglepError, match=r"a folder 'flat' is here: give it as uea:./flat"):
        uea.load("flat")


def test_a_byte_order_mark_and_undeclared_timestamps(tmp_path):
    """A UTF-8 byte-order mark read as 'data before the @data line'; timestamped values without the header said
    only "'(0' is not a number" (new-user probe)."""
    path = tmp_path / "bom.ts"
    path.write_bytes("\ufeff@classLabel true a b\n@data\n1,2:a\n3,4:b\n".encode("utf-8"))
    series, labels, classes = uea.read_ts(str(path))
    assert classes == ["a", "b"] and labels.tolist() == [0, 1]
    stamped = write(tmp_path, "@classLabel true a\n@data\n(0,1),(1,2):a\n")
    with pytest.raises(SymglepError, match=r"value '\(0' is not a number \(a timestamped value"):
        uea.read_ts(stamped)
