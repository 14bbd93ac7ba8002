"""LSTM / GRU / RNN raised to Keras recurrent layers (gate order and reset handled here)."""

from __future__ import annotations
