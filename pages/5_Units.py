"""Units: what drives each unit and each gate to its limits, listed and looked up one by one."""
import streamlit as st

from rnnviz_app.sources import context as cx
from rnnviz_app.sources.source import needs_model
from rnnviz_app.state import page_boot
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import units_view as uv

page_boot.require_entry_point()
needs_model("units")  # an analysis bundle holds no model: say so and stop
ctx = cx.loaded()
ds = ctx.data
st.title("Units")
st.caption("What each unit of the last recurrent layer, and each of its gates, responds to: the steps where it "
           "reaches its limit across all loaded sequences, the inputs just before them, how much it prefers one "
           "class, and how its last value goes with the model's output.")

d = msg.guarded(pu.dictionary, ctx)

uv.one_unit(d, ds)
uv.all_units(d)
