"""What if: edit a step of a sequence and see what the model would have said."""
import streamlit as st

from rnnviz_app.sources import context as cx
from rnnviz_app.sources import sequences as sq
from rnnviz_app.sources.source import needs_model
from rnnviz_app.state import page_boot
from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_whatif as pw
from rnnviz_app.views import whatif_view as wv

page_boot.require_entry_point()
needs_model("whatif")  # an analysis bundle holds no model: say so and stop
ctx = cx.loaded()
ds = ctx.data
st.title("What if")
st.caption("Change a value, delete a step or insert one, and see what the model would have said instead. Only the "
           "steps from the first edit on are computed again.")

labels = msg.guarded(sq.sequence_labels, ctx)
ids = list(labels)
st.selectbox("Sequence", ids, format_func=labels.get, key=su.widget_key("wi_seq", ids[0], ids))
seq = su.value("wi_seq")
pw.keep_for(seq)
row = sq.row_of(ctx)[seq]
L = int(ds.lengths[row])


# The edit box and every view of the edit are one fragment: an edit (or any control there) reruns
# only that part, not the sidebar and the page above it, so the browser gets only what changed
# (bench/bench_whatif.py --only browser). The link is written at its end: the entry point writes
# it on full reruns only.
st.fragment(wv.body)(row, L)
