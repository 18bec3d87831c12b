"""A single-output binary classifier (one logit, sigmoid) with labelled classes: the start page's
accuracy and the pickers' predicted class read class 1 when the logit is above 0 (never an
argmax over one column, which calls every sequence class 0). Checked against the model run by hand."""
from __future__ import annotations

import io
import logging

import numpy as np
import streamlit as st
import torch
from torch import nn

from rnnviz_app.sources import context as cx
from rnnviz_app.sources import sequences as sq
from rnnviz_app.state import state_url as su
from rnnviz_app.views import summary as sm
from rnnviz_app.views.text import format_accuracy
from rnnviz_core.data import load_data

logging.getLogger("streamlit").setLevel(logging.ERROR)


class OneLogit(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 8, batch_first=True)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])          # [N, 1]: one logit, read through a sigmoid


def test_one_logit_binary_classifier_is_read_by_its_sign():
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    su.init_session()
    torch.manual_seed(3)
    model = OneLogit().eval()
    with torch.no_grad():
        model.fc.bias.fill_(0.05)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 10, 3)).astype(np.float32)
    with torch.no_grad():
        logit = model(torch.from_numpy(X))[:, 0].numpy()
    y_idx = (X[:, :, 0].sum(1) > 0).astype(int)
    buf = io.BytesIO()
    np.savez(buf, X=X, y=np.array(["no", "yes"])[y_idx])
    ds = load_data(buf.getvalue(), name="d.npz")
    assert ds.class_names == ["no", "yes"]
    ctx = cx.Loaded(model=model, data=ds, model_key="one-logit", data_key="d", model_name="m.pt",
                    data_name="d.npz", demo=None, device="cpu")
    cx.set_loaded(ctx)

    hand = (logit > 0).astype(int)                            # sigmoid(logit) > 1/2
    assert 0 < hand.sum() < len(hand)                         # both classes predicted: an argmax would differ
    acc = float((hand == ds.y).mean())
    assert acc != float((ds.y == 0).mean())                   # what the argmax over one column gave
    card = sm.model_card(ctx)
    assert card["score_value"] == format_accuracy(acc)
    labels = list(sq.sequence_labels(ctx).values())
    for i in range(len(hand)):
        assert labels[i].endswith(f"predicted {['no', 'yes'][hand[i]]}")
