"""The serving API's answers as typed models: what a client can rely on, and what the OpenAPI page documents.

A window carries its view's measures beside the fixed fields; which measures depends on the view (``GET /views``
lists them), so they are extra fields of the model rather than declared ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Window(BaseModel):
    model_config = ConfigDict(extra="allow")

    window_start_ms: int
    window_end_ms: int
    source: Literal["batch", "speed"]
    version: int | None  # the published batch version that answered; None for the speed layer
    exact: bool  # False when a distinct count is the speed layer's sketch estimate


class ViewAnswer(BaseModel):
    view: str
    key: str
    from_ms: int
    to_ms: int
    boundary_ms: int | None  # the end of the newest published hour
    fingerprint: str  # the view's definition these windows were computed with
    # published hours whose batch version was computed with another definition of the view: the speed layer answers
    # them (where it holds cells of this definition) until a backfill publishes this one
    other_definition_hours: list[str]
    windows: list[Window]


class MeasureInfo(BaseModel):
    name: str
    kind: str


class ViewInfo(BaseModel):
    name: str
    dimensions: list[str]
    window_seconds: int
    filter: str | None
    measures: list[MeasureInfo]
    description: str
    fingerprint: str


class Publication(BaseModel):
    model_config = ConfigDict(extra="allow")  # a rolled-back hour also carries ``rolled_back_from``

    version: int
    views: dict[str, str] | None = None  # view name -> fingerprint of the definition the version was computed with
    previous: list[int]
    published_ms: int
