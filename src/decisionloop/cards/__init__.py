"""Model cards: built from what the platform recorded, rendered as Markdown, HTML or JSON."""

from __future__ import annotations

from decisionloop.cards.evaluation import Evaluation, load_evaluation, save_evaluation
from decisionloop.cards.model_card import ModelCard, build_card
from decisionloop.cards.render import render_card, render_html, render_json, render_markdown

__all__ = [
    "Evaluation",
    "ModelCard",
    "build_card",
    "load_evaluation",
    "render_card",
    "render_html",
    "render_json",
    "render_markdown",
    "save_evaluation",
]
