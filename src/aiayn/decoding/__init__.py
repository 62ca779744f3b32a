"""aiayn.decoding: search (greedy, beam) over a step protocol, and the model adapter."""

from aiayn.decoding.beam import beam_search
from aiayn.decoding.greedy import greedy_search
from aiayn.decoding.hypothesis import Hypothesis, length_penalty
from aiayn.decoding.protocol import Cache, StepModel, max_len_per_sentence
from aiayn.decoding.stepper import ModelStepper, start

__all__ = [
    "Cache",
    "Hypothesis",
    "ModelStepper",
    "StepModel",
    "beam_search",
    "greedy_search",
    "length_penalty",
    "max_len_per_sentence",
    "start",
]
