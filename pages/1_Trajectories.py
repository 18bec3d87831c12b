import streamlit as st

st.title("Trajectories")
