import streamlit as st

st.title("Contributions")
