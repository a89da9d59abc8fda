"""Evaluation: the paper's metrics, official-format prediction files, ISLR top-K and closed-set ranking,
BLEURT, and the results collector that fills the paper's tables. Reads models and datasets; nothing below it
imports it."""
