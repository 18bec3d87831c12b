"""rnnviz_core.data: loaders (CSV/Parquet long form, NPZ, .ts), validation messages, model checks."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

import rnnviz_core as rv
from rnnviz_core.data import SequenceDataset, check_against_model, from_arrays, load_data
from rnnviz_core.errors import DataError
from rnnviz_core.models import ModelConfig, build_model

CSV = """seq_id,step,speed,temp,track,label
a,2,0.5,10,north,up
a,1,0.25,11,north,up
a,3,0.75,12,north,up
b,1,1.0,20,south,down
b,2,2.0,21,south,down
"""


def _csv(text: str = CSV, **kw) -> SequenceDataset:
    return load_data(text.encode(), name="d.csv", **kw)


def test_long_form_csv_by_hand():
    ds = _csv()
    assert len(ds) == 2 and ds.max_len == 3
    assert list(ds.ids) == ["a", "b"]                     # first-appearance order
    assert ds.lengths.tolist() == [3, 2]
    assert ds.feature_names == ["speed", "temp"]
    np.testing.assert_array_equal(ds.X[0], [[0.25, 11], [0.5, 10], [0.75, 12]])   # sorted by step
    np.testing.assert_array_equal(ds.X[1], [[1, 20], [2, 21], [0, 0]])            # zero padded
    assert ds.groups.columns.tolist() == ["track"] and ds.groups["track"].tolist() == ["north", "south"]
    assert ds.class_names == ["down", "up"] and ds.y.tolist() == [1, 0]
    assert ds.task == "classification" and list(ds.labels) == ["up", "down"]


def test_labels_follow_given_class_names():
    ds = _csv(class_names=["up", "down"])
    assert ds.class_names == ["up", "down"] and ds.y.tolist() == [0, 1]
    with pytest.raises(DataError, match=r"not among the classes \['up', 'sideways'\]: 'down'"):
        _csv(class_names=["up", "sideways"])


def test_overrides_pick_columns():
    ds = _csv(feature_cols=["temp"], group_cols=["track"], label_col="")
    assert ds.feature_names == ["temp"] and ds.y is None and ds.task is None
    np.testing.assert_array_equal(ds.X[0, :, 0], [11, 10, 12])
    # the numeric speed column is neither a feature nor a group: it is simply not used
    assert "speed" not in ds.groups.columns


def test_numeric_per_sequence_columns_become_groups_and_regression_labels():
    text = "id,t,x,grade,target\n1,1,0.1,5,2.5\n1,2,0.2,5,2.5\n2,1,0.3,7,-1.0\n2,2,0.4,7,-1.0\n"
    ds = load_data(text.encode(), name="r.csv")
    assert ds.feature_names == ["x"] and ds.groups["grade"].tolist() == [5, 7]
    assert ds.task == "regression" and ds.y.dtype == np.float32 and ds.y.tolist() == [2.5, -1.0]


def test_dates_order_and_no_order_column():
    text = "id,date,x\nq,2024-03-01,3\nq,2024-01-01,1\nq,2024-02-01,2\n"
    ds = load_data(text.encode(), name="d.csv")
    assert ds.X[0, :, 0].tolist() == [1, 2, 3] and ds.y is None
    ds2 = load_data("id,x\nq,3\nq,1\n".encode(), name="d.csv")   # no order column: file order
    assert ds2.X[0, :, 0].tolist() == [3, 1]


def test_parquet_round_trip(tmp_path):
    df = pd.read_csv(io.StringIO(CSV))
    df.to_parquet(tmp_path / "d.parquet")
    a, b = _csv(), load_data(tmp_path / "d.parquet")
    np.testing.assert_array_equal(a.X, b.X)
    assert a.y.tolist() == b.y.tolist() and list(a.ids) == list(b.ids)


def test_to_frame_round_trip_and_subset():
    ds = _csv()
    back = load_data(ds.to_frame().to_csv(index=False).encode(), name="x.csv")
    np.testing.assert_array_equal(back.X, ds.X)
    assert back.y.tolist() == ds.y.tolist() and back.groups.equals(ds.groups)
    sub = ds.subset([1])
    assert len(sub) == 1 and sub.max_len == 2 and list(sub.ids) == ["b"] and sub.groups["track"].tolist() == ["south"]
    assert len(ds.subset(np.array([True, False]))) == 1


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize("text,kw,needle", [
    ("seq_id,step,speed,label\n", {}, "no rows, so there are no sequences"),
    (CSV, dict(label_col="lable"), "There is no column 'lable' (given as the label column). Did you mean 'label'?"),
    (CSV, dict(id_col="Seq_ID"), "There is no column 'Seq_ID'"),
    (CSV, dict(feature_cols=["sped"]), "There is no column 'sped' (given as the feature column). Did you mean 'speed'"),
    ("name,x\na,1\n", {}, "Could not tell which column is the sequence id; name it with id_col="),
    ("id,user_id,x\n1,2,3\n", {}, "Several columns could be the sequence id (id, user_id)"),
    ("id,step,x,mood\na,1,1,ok\na,2,2,bad\n", {}, "The column 'mood' holds text (for example 'ok' in sequence 'a')"),
    ("id,step,x\na,1,1\na,1,2\n", {}, "Sequence 'a' has step 1 more than once (column 'step')"),
    ("id,step,x,label\na,1,1,u\na,2,2,v\n", {}, "The label column 'label' changes within sequence 'a'"),
    ("id,step,x,label\na,1,1,u\nb,1,2,\n", {}, "Sequence 'b' has no label in column 'label'"),
    ("id,step,x,g\na,1,1,2\na,2,2,3\n", dict(feature_cols=["x"], group_cols=["g"]),
     "The group column 'g' changes within sequence 'a'"),
    ("id,step,x\na,one,1\n", {}, "The order column 'step' must hold numbers or dates, but has 'one'"),
    ("id,step,x\na,1,1\n,2,2\n", {}, "The id column 'id' is empty in row 3"),
    ("id,step,x,y\na,1,1,2\n", dict(feature_cols=[]), "No feature columns were given"),
    (CSV, dict(feature_cols=["speed", "label"]), "The column 'label' is already the sequence id, order or label"),
    ("id,step,x,x\na,1,1,2\n", {}, ""),   # pandas renames the duplicate to x.1: still readable
])
def test_validation_messages(text, kw, needle):
    if not needle:
        assert len(load_data(text.encode(), name="d.csv", **kw)) == 1
        return
    with pytest.raises(DataError) as e:
        load_data(text.encode(), name="d.csv", **kw)
    assert needle in str(e.value), str(e.value)


NAN_CSV = "id,step,x,z\na,1,1,10\na,2,,20\na,3,3,inf\nb,1,5,50\nb,2,6,60\n"


def test_nan_and_inf_are_reported_with_where():
    with pytest.raises(DataError) as e:
        load_data(NAN_CSV.encode(), name="d.csv")
    msg = str(e.value)
    assert "2 missing or infinite values" in msg
    assert "sequence 'a' step 2 column 'x'" in msg and "sequence 'a' step 3 column 'z'" in msg
    assert "fill" in msg and "drop" in msg


def test_nan_fill_carries_last_value_forward():
    ds = load_data(NAN_CSV.encode(), name="d.csv", missing="fill")
    np.testing.assert_array_equal(ds.X[0], [[1, 10], [1, 20], [3, 20]])
    np.testing.assert_array_equal(ds.X[1, :2], [[5, 50], [6, 60]])


def test_nan_drop_removes_the_sequences():
    ds = load_data(NAN_CSV.encode(), name="d.csv", missing="drop")
    assert list(ds.ids) == ["b"] and ds.X.shape == (1, 2, 2)
    with pytest.raises(DataError, match="dropping them leaves nothing"):
        load_data(b"id,x\na,\n", name="d.csv", missing="drop")
    with pytest.raises(DataError, match="must be 'error', 'fill' or 'drop'"):
        load_data(NAN_CSV.encode(), name="d.csv", missing="ignore")


def test_size_limits(monkeypatch):
    import rnnviz_core.data as data

    monkeypatch.setattr(data, "MAX_ROWS", 3)
    with pytest.raises(DataError, match="more than 3 rows"):
        load_data(CSV.encode(), name="d.csv")
    monkeypatch.setattr(data, "MAX_ROWS", 10**6)
    monkeypatch.setattr(data, "MAX_STEPS", 2)
    with pytest.raises(DataError, match="The longest sequence has 3 steps; rnnviz handles at most 2"):
        load_data(CSV.encode(), name="d.csv")
    monkeypatch.setattr(data, "MAX_DATA_BYTES", 50)
    with pytest.raises(DataError, match="larger than the 0 MB|larger than"):
        load_data(CSV.encode(), name="d.csv")


# ------------------------------------------------------------------------------- NPZ
def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_full_and_minimal():
    X = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    ds = load_data(_npz(X=X, lengths=np.array([3, 1]), y=np.array([1, 0]), ids=np.array(["p", "q"]),
                        class_names=np.array(["no", "yes"]), site=np.array(["x", "y"])), name="d.npz")
    assert ds.lengths.tolist() == [3, 1] and list(ds.ids) == ["p", "q"] and ds.class_names == ["no", "yes"]
    np.testing.assert_array_equal(ds.X[1], [[6, 7], [0, 0], [0, 0]])          # zeroed past the length
    assert ds.groups["site"].tolist() == ["x", "y"]
    minimal = load_data(_npz(X=X), name="m.npz")
    assert minimal.lengths.tolist() == [3, 3] and minimal.y is None and minimal.feature_names == ["feature 0", "feature 1"]


@pytest.mark.parametrize("arrays,needle", [
    (dict(x=np.zeros((2, 3, 1))), "has no array named 'X' (the sequences, shaped [N, T, F]). Did you mean 'x'?"),
    (dict(X=np.zeros((2, 3, 1)), lengths=np.array([3, 4])), "between 1 and the number of steps (3)"),
    (dict(X=np.zeros((2, 3, 1)), lengths=np.array([3])), "There are 2 sequences but 1 lengths"),
    (dict(X=np.zeros((0, 3, 1))), "no sequences"),
    (dict(X=np.zeros((2, 3, 1, 1))), "X must have 3 dimensions"),
    (dict(X=np.array([["a"]])), "X must hold numbers"),
    (dict(X=np.zeros((2, 3, 1)), ids=np.array(["a", "a"])), "Sequence ids must be unique, but 'a' appears more"),
    (dict(X=np.full((1, 2, 1), np.nan)), "sequence '0' step 1 column 'feature 0'"),
])
def test_npz_errors(arrays, needle):
    with pytest.raises(DataError) as e:
        load_data(_npz(**arrays), name="d.npz")
    assert needle in str(e.value), str(e.value)


# -------------------------------------------------------------------------------- .ts
TS_UNI = """# a comment
@problemName Tiny
@timeStamps false
@univariate true
@equalLength true
@seriesLength 3
@classLabel true a b
@data
1.0,2.0,3.0:a
4.0,5.0,6.0:b
"""

TS_MULTI = """@problemName Multi
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true 1 2 3
@data
1,2,3:10,20,30:3
4,?:40,50:1
"""


def test_ts_univariate_equal_length():
    ds = load_data(TS_UNI.encode(), name="Tiny_TEST.ts")
    assert ds.X.shape == (2, 3, 1) and ds.feature_names == ["Tiny"]
    assert ds.class_names == ["a", "b"] and ds.y.tolist() == [0, 1]
    np.testing.assert_array_equal(ds.X[:, :, 0], [[1, 2, 3], [4, 5, 6]])


def test_ts_multivariate_unequal_length_with_missing_values():
    with pytest.raises(DataError, match="sequence 'case00001' step 2 column 'dim 0'"):
        load_data(TS_MULTI.encode(), name="m.ts")
    ds = load_data(TS_MULTI.encode(), name="m.ts", missing="fill")
    assert ds.X.shape == (2, 3, 2) and ds.lengths.tolist() == [3, 2]
    np.testing.assert_array_equal(ds.X[1], [[4, 40], [4, 50], [0, 0]])
    assert ds.class_names == ["1", "2", "3"] and ds.y.tolist() == [2, 0]


@pytest.mark.parametrize("text,needle", [
    ("@problemName X\n@classLabel true a\n", "no '@data' line"),
    ("@problemName X\n@data\n", "no cases after '@data'"),
    ("@problemName X\n@classLabel true a\n@data\n1,2:a\n1,2:3,4:a\n", "line 5 has 2 channels but the first case has 1"),
    ("@problemName X\n@classLabel true a\n@data\n1,x:a\n", "has the value 'x', which is not a number"),
    ("@problemName X\n@classLabel true a\n@data\n1,2:b\n", "labels not declared in its @classLabel line: b"),
    ("@problemName X\n@timeStamps true\n@data\n", "uses time stamps"),
    ("@problemName X\n@classLabel false\n@data\n1,2:3\n", "different lengths"),
])
def test_ts_errors(text, needle):
    with pytest.raises(DataError) as e:
        load_data(text.encode(), name="x.ts")
    assert needle in str(e.value), str(e.value)


# ----------------------------------------------------------------------- data vs model
def _model(features=("speed", "temp"), classes=("up", "down")):
    return build_model(ModelConfig(cell="GRU", input_size=len(features), hidden_size=3, num_outputs=len(classes)),
                       class_names=list(classes), feature_names=list(features))


def test_check_against_model_aligns_classes_and_feature_order():
    ds = _csv()                                            # classes sorted: ["down", "up"]
    fixed = check_against_model(ds, _model(classes=("up", "down")))
    assert fixed.class_names == ["up", "down"] and list(fixed.labels) == ["up", "down"]
    swapped = check_against_model(ds, _model(features=("temp", "speed")))
    assert swapped.feature_names == ["temp", "speed"]
    np.testing.assert_array_equal(swapped.X[..., 0], ds.X[..., 1])


@pytest.mark.parametrize("model_kw,needle", [
    (dict(features=("speed", "temp", "wind")), "the data lacks 'wind'"),
    (dict(features=("speed", "tmp")), "the data lacks 'tmp' Did you mean 'temp'?"),
    (dict(classes=("up", "flat")), "labels the model does not know ('down')"),
])
def test_check_against_model_errors(model_kw, needle):
    with pytest.raises(DataError) as e:
        check_against_model(_csv(), _model(**model_kw))
    assert needle in str(e.value), str(e.value)


def test_feature_count_mismatch_with_unnamed_features():
    ds = from_arrays(np.zeros((2, 3, 4)))
    model = build_model(ModelConfig(cell="GRU", input_size=3, hidden_size=2))
    with pytest.raises(DataError, match="The model reads 3 features per step but the data has 4"):
        check_against_model(ds, model)


def test_public_names():
    assert rv.load_data is load_data and rv.SequenceDataset is SequenceDataset


# ---------------------------------------------------------------------- reading labels
def _lab(y, **kw):
    return from_arrays(np.zeros((len(y), 2, 1)), y=np.asarray(y), **kw)


def test_label_reading_rules():
    ds = _lab([0, 2, 1])
    assert ds.class_names == ["0", "1", "2"] and ds.y.tolist() == [0, 2, 1]
    ds = _lab([3, 1, 2, 3])                          # numbered from 1: names, not a phantom class 0
    assert ds.class_names == ["1", "2", "3"] and ds.y.tolist() == [2, 0, 1, 2]
    ds = _lab(np.arange(60))                         # many distinct whole numbers: regression
    assert ds.task == "regression" and ds.class_names is None and ds.y.dtype == np.float32
    ds = _lab([0.5, 1.5])
    assert ds.task == "regression" and ds.y.tolist() == [0.5, 1.5]
    ds = _lab([1, 0], task="regression")
    assert ds.task == "regression" and ds.y.tolist() == [1.0, 0.0]
    ds = _lab(np.array(["2.5", "1"]))                # numbers stored as text
    assert ds.task == "regression" and ds.y.tolist() == [2.5, 1.0]
    ds = _lab([7, 9], class_names=["7", "8", "9"])   # numbered class names: matched by name
    assert ds.y.tolist() == [0, 2]
    ds = _lab([0, 1], class_names=["no", "yes"])     # other names: the numbers are indices
    assert ds.labels.tolist() == ["no", "yes"]
    with pytest.raises(DataError, match=r"Label numbers must run from 0 to 1 \(one per class: no, yes\); found 0 to 2"):
        _lab([0, 2], class_names=["no", "yes"])
    with pytest.raises(DataError, match="labels are text, so they cannot be regression targets"):
        _lab(np.array(["a", "b"]), task="regression")
    with pytest.raises(DataError, match="missing or infinite"):
        _lab([0.5, np.nan])


def test_regression_model_reads_numbered_classes_as_numbers():
    model = build_model(ModelConfig(cell="GRU", input_size=1, hidden_size=2, task="regression", num_outputs=1))
    ds = check_against_model(_lab([2, 5, 2]), model)
    assert ds.class_names is None and ds.y.tolist() == [2.0, 5.0, 2.0]
    with pytest.raises(DataError, match="predicts numbers"):
        check_against_model(_lab(np.array(["a", "b"])), model)


class _Upload(io.BytesIO):
    """What Streamlit's file uploader hands over: bytes with a name."""

    name = "upload.csv"


def test_upload_like_object():
    ds = load_data(_Upload(CSV.encode()))
    assert len(ds) == 2 and ds.name == "upload.csv"


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_separated_files(sep):
    ds = load_data(CSV.replace(",", sep).encode(), name="d.csv")
    np.testing.assert_array_equal(ds.X, _csv().X)


# ------------------------------------------------------------------------ class order (issue 9)
TS_PETS = """@problemName Pets
@timeStamps false
@univariate true
@equalLength true
@classLabel true cat dog bird
@data
1,2,3:bird
4,5,6:dog
7,8,9:bird
1,1,1:cat
"""


def test_ts_declared_class_order_is_kept_with_real_names():
    ds = load_data(TS_PETS.encode(), name="Pets_TEST.ts")
    assert ds.class_names == ["cat", "dog", "bird"] and ds.declared_classes == ["cat", "dog", "bird"]
    assert ds.y.tolist() == [2, 1, 2, 0] and list(ds.labels) == ["bird", "dog", "bird", "cat"]
    cands = {k: names for k, _, names in rv.data.class_order_candidates(ds)}
    assert cands == {"declared": ["cat", "dog", "bird"], "sorted": ["bird", "cat", "dog"],
                     "first": ["bird", "dog", "cat"]}


def test_declared_class_not_in_the_file_still_counts():
    text = TS_PETS.replace("1,1,1:cat\n", "")            # 'cat' declared, never used
    ds = load_data(text.encode(), name="p.ts")
    cands = {k: names for k, _, names in rv.data.class_order_candidates(ds)}
    assert cands["sorted"] == ["bird", "cat", "dog"] and cands["first"] == ["bird", "dog", "cat"]


def test_npz_class_names_are_the_declared_order_and_csv_has_none():
    X = np.zeros((3, 2, 1), np.float32)
    ds = load_data(_npz(X=X, y=np.array([0, 2, 1]), class_names=np.array(["zebra", "ant", "moth"])), name="d.npz")
    keys = [k for k, _, _ in rv.data.class_order_candidates(ds)]
    assert keys == ["declared", "sorted", "first"] and ds.declared_classes == ["zebra", "ant", "moth"]
    assert list(ds.labels) == ["zebra", "moth", "ant"]
    csv = [(k, n) for k, _, n in rv.data.class_order_candidates(_csv())]
    assert csv == [("sorted", ["down", "up"]), ("first", ["up", "down"])]


def test_number_labels_offer_text_sorting_like_label_encoder():
    from sklearn.preprocessing import LabelEncoder

    text = "@problemName N\n@classLabel true 1 2 10\n@data\n" + "".join(f"0,1:{c}\n" for c in ["2", "10", "1"])
    ds = load_data(text.encode(), name="n.ts")
    cands = {k: (label, names) for k, label, names in rv.data.class_order_candidates(ds)}
    assert cands["sorted"][1] == ["1", "2", "10"]
    assert cands["sorted_text"][1] == list(LabelEncoder().fit(np.array(["2", "10", "1"])).classes_)
    assert "same as" in cands["sorted"][0]              # declared 1 2 10 is also the number order


def test_regression_targets_have_no_class_order():
    ds = load_data(b"id,t,x,target\n1,1,0.1,2.5\n2,1,0.2,-1.0\n", name="r.csv")
    assert rv.data.class_order_candidates(ds) == []
    model = build_model(ModelConfig(cell="GRU", input_size=1, hidden_size=2, task="regression", num_outputs=1))
    assert check_against_model(ds, model).y.tolist() == [2.5, -1.0]


def test_with_class_order_reindexes_by_name():
    ds = load_data(TS_PETS.encode(), name="p.ts")
    other = ds.with_class_order(["bird", "cat", "dog"])
    assert list(other.labels) == list(ds.labels) and other.y.tolist() == [0, 2, 0, 1]
    with pytest.raises(DataError, match="leaves out labels the data has \\('bird'\\)") as e:
        ds.with_class_order(["cat", "dog"])
    assert e.value.field == "class_order"


class _TutorialGRU(torch.nn.Module):
    """The classifier a tutorial writes: attributes gru / fc, reading out[:, -1]."""

    def __init__(self, n_in=1, hidden=4, n_out=3):
        super().__init__()
        self.gru = torch.nn.GRU(n_in, hidden, batch_first=True)
        self.fc = torch.nn.Linear(hidden, n_out)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


def _state_dict_file(tmp_path, module) -> bytes:
    torch.save(module.state_dict(), tmp_path / "model.pt")
    return (tmp_path / "model.pt").read_bytes()


def test_real_class_names_and_an_unnamed_state_dict_ask_for_the_class_order(tmp_path):
    """Issue 9: 'labels the model does not know ... class 0' was shown for a plain state dict."""
    torch.manual_seed(0)
    model = rv.load_model(_state_dict_file(tmp_path, _TutorialGRU()), name="model.pt")
    assert model.class_names == ["class 0", "class 1", "class 2"]
    ds = load_data(TS_PETS.encode(), name="Pets_TEST.ts")
    with pytest.raises(DataError) as e:
        check_against_model(ds, model)
    msg = str(e.value)
    assert "does not know" not in msg and "Choose the class order" in msg and "'bird'" in msg
    assert (e.value.code, e.value.field) == ("class_order_needed", "class_order")
    # the order chosen names the model's outputs: output 0 is 'bird' when sorted
    aligned = check_against_model(ds, model, class_names=["bird", "cat", "dog"])
    assert aligned.class_names == ["bird", "cat", "dog"] and aligned.y.tolist() == [0, 2, 0, 1]
    assert list(aligned.labels) == list(ds.labels)
    with pytest.raises(DataError, match="names 2 classes but the model has 3 outputs"):
        check_against_model(ds, model, class_names=["bird", "cat"])


def test_model_named_classes_still_align_by_name(tmp_path):
    ds = load_data(TS_PETS.encode(), name="Pets_TEST.ts")
    model = _model(features=("feature 0",), classes=("dog", "bird", "cat"))
    aligned = check_against_model(ds, model)
    assert aligned.class_names == ["dog", "bird", "cat"] and list(aligned.labels) == list(ds.labels)


# ------------------------------------------------------------------ columns (issue 9, item 4)
def test_inspect_columns_guesses_what_load_data_infers():
    g = rv.data.inspect_columns(CSV.encode(), name="d.csv")
    assert (g.kind, g.id_col, g.order_col, g.label_col) == ("table", "seq_id", "step", "label")
    assert g.feature_cols == ["speed", "temp"] and g.group_cols == ["track"] and g.problems == []
    assert g.numeric == ["step", "speed", "temp"] and g.n_rows == 5
    assert g.candidates["id"][0] == "seq_id" and g.candidates["features"] == ["speed", "temp"]
    a, b = _csv(), _csv(**g.choices())
    np.testing.assert_array_equal(a.X, b.X)
    assert a.y.tolist() == b.y.tolist() and a.groups.equals(b.groups)


ODD = "who,when,a,b,outcome\nx,1,1,10,hi\nx,2,2,20,hi\nz,1,3,30,lo\n"


def test_columns_that_cannot_be_inferred_are_reported_as_plain_sentences_and_can_be_chosen():
    g = rv.data.inspect_columns(ODD.encode(), name="odd.csv")
    assert g.id_col is None and g.order_col is None and g.label_col == "outcome"
    assert g.problems == ["Could not tell which column is the sequence id; choose it."]
    assert set(g.candidates["id"]) >= {"who", "when"} and set(g.numeric) == {"when", "a", "b"}
    with pytest.raises(DataError) as e:
        load_data(ODD.encode(), name="odd.csv")
    assert (e.value.code, e.value.field) == ("unknown_column", "id")
    ds = load_data(ODD.encode(), name="odd.csv", id_col="who", order_col="when", label_col="outcome",
                   feature_cols=["b", "a"])                      # features in the order given
    assert ds.feature_names == ["b", "a"] and ds.X[0].tolist() == [[10, 1], [20, 2]]
    assert list(ds.labels) == ["hi", "lo"]


def test_ambiguous_columns_give_no_code_in_problems():
    g = rv.data.inspect_columns(b"id,user_id,x\n1,2,3\n", name="d.csv")
    assert g.id_col is None
    assert g.problems[0] == "Several columns could be the sequence id (id, user_id); choose one."
    assert not any("=" in p or "_col" in p for p in g.problems)
    with pytest.raises(DataError) as e:
        load_data(b"id,user_id,x\n1,2,3\n", name="d.csv")
    assert (e.value.code, e.value.field) == ("ambiguous_column", "id")


@pytest.mark.parametrize("kw,code,field", [
    (dict(label_col="lable"), "missing_column", "label"),
    (dict(order_col="stp"), "missing_column", "order"),
    (dict(feature_cols=["sped"]), "missing_column", "features"),
    (dict(group_cols=["trak"]), "missing_column", "groups"),
    (dict(missing="ignore"), "bad_option", "missing"),
])
def test_errors_name_the_choice_to_change(kw, code, field):
    with pytest.raises(DataError) as e:
        _csv(**kw)
    assert (e.value.code, e.value.field) == (code, field)


def test_missing_values_are_counted_for_the_missing_choice():
    g = rv.data.inspect_columns(NAN_CSV.encode(), name="n.csv")
    assert g.missing == {"x": 1, "z": 1} and "fill them forward or drop" in g.problems[-1]
    with pytest.raises(DataError) as e:
        load_data(NAN_CSV.encode(), name="n.csv", **g.choices())
    assert (e.value.code, e.value.field) == ("missing_values", "missing")
    assert load_data(NAN_CSV.encode(), name="n.csv", missing="drop", **g.choices()).ids.tolist() == ["b"]


def test_inspect_npz_and_ts_have_nothing_to_choose():
    assert rv.data.inspect_columns(TS_PETS.encode(), name="p.ts").kind == "ts"
    assert rv.data.inspect_columns(_npz(X=np.zeros((2, 3, 1))), name="p.npz").choices() == {}


# --------------------------------------------------------------------- text data (issue 9, item 5)
TRAIN = ["this movie was good", "not good at all", "a great film", "not great", "the plot was bad"]


def _tutorial_vocab():
    """How tutorials build it: lower-cased words by frequency after <pad> and <unk>."""
    from collections import Counter

    counter = Counter(w for r in TRAIN for w in r.lower().split())
    itos = ["<pad>", "<unk>"] + [w for w, _ in counter.most_common()]
    return itos, {w: i for i, w in enumerate(itos)}


REVIEWS = "review_id,review,label\nr1,This movie was GOOD,pos\nr2,not good,neg\nr3,boring plot,neg\n"


def test_text_csv_with_a_tutorial_vocabulary():
    itos, stoi = _tutorial_vocab()
    ds = load_data(REVIEWS.encode(), name="reviews.csv", vocabulary=itos)
    assert ds.is_tokens and ds.X.dtype == np.int64 and ds.vocabulary == itos and ds.n_features == 1
    expect = [[stoi[w] for w in "this movie was good".split()],
              [stoi["not"], stoi["good"]],
              [stoi["<unk>"], stoi["plot"]]]                           # 'boring' is not in the vocabulary
    assert ds.lengths.tolist() == [4, 2, 2] and ds.pad_id == 0 == stoi["<pad>"]
    for i, e in enumerate(expect):
        assert ds.X[i, : len(e)].tolist() == e and (ds.X[i, len(e):] == 0).all()
    assert list(ds.ids) == ["r1", "r2", "r3"] and list(ds.labels) == ["pos", "neg", "neg"]
    assert ds.tokens(1) == ["not", "good"] and ds.tokens(2) == ["<unk>", "plot"]


def test_vocabulary_files_json_list_json_object_and_txt(tmp_path):
    import json

    itos, stoi = _tutorial_vocab()
    (tmp_path / "itos.json").write_text(json.dumps(itos))
    (tmp_path / "stoi.json").write_text(json.dumps(stoi))
    (tmp_path / "vocab.txt").write_bytes("\r\n".join(itos).encode() + b"\r\n")    # Windows line endings
    for f in ("itos.json", "stoi.json", "vocab.txt"):
        assert rv.data.load_vocabulary(tmp_path / f) == itos, f
    assert rv.data.load_vocabulary("\r".join(itos).encode(), name="v.txt") == itos    # CR only
    with pytest.raises(DataError, match="lists the token 'good' twice"):
        rv.data.load_vocabulary(b"a\ngood\ngood\n", name="v.txt")
    with pytest.raises(DataError, match="not 0 to 1, each once"):
        rv.data.load_vocabulary(b'{"a": 0, "b": 2}', name="v.json")


def test_unknown_words_without_unk_are_refused_by_name():
    itos = ["<pad>", "this", "movie", "was", "good", "not"]
    with pytest.raises(DataError) as e:
        load_data(REVIEWS.encode(), name="reviews.csv", vocabulary=itos)
    assert "'boring'" in str(e.value) and "'plot'" in str(e.value) and "no <unk> token" in str(e.value)
    assert (e.value.code, e.value.field) == ("unknown_tokens", "vocabulary")


def test_long_form_token_ids_and_text_without_ids():
    itos, stoi = _tutorial_vocab()
    text = "id,step,token_id,label\na,1,5,pos\na,2,3,pos\nb,1,2,neg\n"
    ds = load_data(text.encode(), name="ids.csv", vocabulary=itos)
    assert ds.is_tokens and ds.X.tolist() == [[5, 3], [2, 0]] and ds.tokens(0) == [itos[5], itos[3]]
    with pytest.raises(DataError, match="has the token id 99"):
        load_data(text.replace(",5,", ",99,").encode(), name="ids.csv", vocabulary=itos)
    plain = load_data(b"text,label\nnot good,neg\na great film,pos\n", name="t.csv", vocabulary=itos)
    assert list(plain.ids) == ["1", "2"] and plain.X[1].tolist() == [stoi["a"], stoi["great"], stoi["film"]]


def test_text_without_a_vocabulary_asks_for_one():
    with pytest.raises(DataError) as e:
        load_data(REVIEWS.encode(), name="reviews.csv")
    assert (e.value.code, e.value.field) == ("vocabulary_needed", "vocabulary")
    assert "text column ('review')" in str(e.value)


def test_token_data_against_embedding_and_numeric_models():
    itos, _ = _tutorial_vocab()
    ds = load_data(REVIEWS.encode(), name="reviews.csv", vocabulary=itos)
    cfg = dict(cell="LSTM", input_size=1, encoder="embedding", encoder_size=4, hidden_size=3, num_outputs=2)
    model = build_model(ModelConfig(vocab_size=len(itos), **cfg), class_names=["neg", "pos"])
    ok = check_against_model(ds, model)
    assert list(ok.labels) == ["pos", "neg", "neg"] and ok.class_names == ["neg", "pos"]
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():                                   # ids reach the embedding as they are
        out = model(torch.as_tensor(ok.X), torch.as_tensor(ok.lengths))
        ref = model(torch.as_tensor(ok.X[:1, :4]), torch.as_tensor([4]))
    torch.testing.assert_close(out[:1], ref)
    with pytest.raises(DataError, match="the model knows 5 tokens"):
        check_against_model(ds, build_model(ModelConfig(vocab_size=5, **cfg), class_names=["neg", "pos"]))
    with pytest.raises(DataError) as e:
        check_against_model(ds, _model(features=("feature 0",), classes=("neg", "pos")))
    assert e.value.code == "tokens_vs_numbers"


def test_token_data_round_trips_through_the_long_form_with_words():
    itos, _ = _tutorial_vocab()
    ds = load_data(REVIEWS.encode(), name="reviews.csv", vocabulary=itos)
    frame = ds.to_frame()
    assert frame.columns.tolist() == ["id", "step", "token", "label"]
    assert frame["token"].tolist()[:4] == ["this", "movie", "was", "good"]
    back = load_data(frame.to_csv(index=False).encode(), name="words.csv", vocabulary=itos)
    np.testing.assert_array_equal(back.X, ds.X)
    assert back.lengths.tolist() == ds.lengths.tolist() and list(back.labels) == list(ds.labels)
