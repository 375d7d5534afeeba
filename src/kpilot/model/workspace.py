"""The steering model as typed objects: workspace, vision, teams, sources, models, metrics.

These classes only check shapes and types. Cross-references and meaning (does the model exist,
is the column there, is the board 3 to 5 KPIs) are checked by `kpilot.model.validate`.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kpilot.model.channels import AlertSettings, Channel, Review, check_http_url
from kpilot.model.errors import msg
from kpilot.model.periods import Grain, WeekStart
from kpilot.model.schedule import parse_cron

KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Spec(BaseModel):
    """Base of every definition object: unknown fields are errors (they are usually typos)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=False)


class Language(StrEnum):
    en = "en"
    fr = "fr"


class MetricType(StrEnum):
    simple = "simple"
    ratio = "ratio"
    snapshot = "snapshot"
    derived = "derived"
    cumulative = "cumulative"


class Direction(StrEnum):
    up = "up"
    down = "down"


class Kind(StrEnum):
    leading = "leading"
    lagging = "lagging"


class Status(StrEnum):
    green = "green"
    amber = "amber"
    red = "red"
    none = "none"


class Objective(Spec):
    key: str = Field(pattern=KEY_PATTERN)
    statement: str
    metrics: list[str] = []
    owner: str | None = None


class Vision(Spec):
    statement: str
    horizon: date | None = None
    objectives: list[Objective] = []


class Team(Spec):
    key: str = Field(pattern=KEY_PATTERN)
    name: str | None = None
    members: list[str] = []
    email: str | None = None
    notify: list[str] = Field(default=[], description="keys of the channels this team's alerts go to")

    @property
    def label(self) -> str:
        return self.name or self.key


FILE_SOURCE_TYPES = ("csv", "excel", "parquet")
SQL_SOURCE_TYPES = ("postgres", "mysql", "sqlite", "duckdb")
SERVER_SOURCE_TYPES = ("postgres", "mysql")
# Database sources whose tables can stay where they are, the metrics computed by the database (push-down).
IN_PLACE_SOURCE_TYPES = ("postgres", "mysql", "sqlite", "duckdb")
# Engines that compute where their data lives and never copy: every table of such a source is computed in place.
ENGINE_SOURCE_TYPES = ("spark", "chdb", "clickhouse")
# Table formats such an engine reads from a file or folder (`path:` relative to the workspace folder).
ENGINE_FORMATS: dict[str, tuple[str, ...]] = {"spark": ("parquet", "delta"), "chdb": ("parquet",),
                                              "clickhouse": ()}


class SourceTable(Spec):
    """One table of a database source: where it comes from and how it is copied into the warehouse."""

    table: str | None = Field(default=None, description="the table in the database, `schema.table` or `table`; "
                                                        "default: the table's name in the warehouse")
    cursor: str | None = Field(default=None, description="a column that grows with every new or changed row: "
                                                         "copy incrementally on it; without it, copy in full")
    primary_key: str | list[str] | None = Field(default=None, description="column(s) identifying a row: changed "
                                                                          "rows replace their previous copy")
    mode: Literal["copy", "in_place"] = Field(default="copy", description="`copy`: rows are copied into the "
                                              "warehouse; `in_place`: metrics are computed by the database itself")
    # Spark and chDB: a table read from files rather than from the engine's catalog.
    path: str | None = Field(default=None, description="spark, chdb: a file or folder holding the table, relative "
                                                       "to the workspace folder")
    format: str | None = Field(default=None, description="spark: parquet or delta; chdb: parquet (the format of "
                                                         "`path:`, default parquet)")

    @property
    def key_columns(self) -> list[str]:
        if self.primary_key is None:
            return []
        return [self.primary_key] if isinstance(self.primary_key, str) else list(self.primary_key)

    @model_validator(mode="after")
    def _keys(self) -> SourceTable:
        if self.mode == "in_place" and (self.cursor is not None or self.primary_key is not None):
            raise ValueError(msg("cursor and primary_key are for `mode: copy`; a table computed in place is "
                                 "read as it is at every compute. Fix: remove them, or use `mode: copy`"))
        if self.primary_key is not None and not self.key_columns:
            raise ValueError(msg("primary_key needs at least one column"))
        return self


class Source(Spec):
    """Where data comes from. File sources load one table per file (or per sheet); database sources copy
    the tables they list."""

    key: str = Field(pattern=KEY_PATTERN)
    type: Literal[
        "csv", "excel", "parquet", "duckdb", "sqlite", "postgres", "mysql", "spark", "chdb", "clickhouse",
        "ga4", "hubspot", "pipedrive", "salesforce", "brevo", "push",
    ]
    path: str | None = None
    # File options; each is detected when omitted.
    delimiter: str | None = None
    decimal: Literal[".", ","] | None = None
    encoding: str | None = None
    date_format: str | None = None
    timestamp_format: str | None = None
    header: bool = True
    null_values: list[str] | None = None
    sheet: str | None = None
    tables: dict[str, str | SourceTable] | None = Field(
        default=None, description="table name -> file (relative to path) or, for Excel, sheet name; for a "
                                  "database: table name -> the database's table, or its settings"
    )
    # Database sources: where the server is. The password never goes in kpilot.yaml: `url_env` names an
    # environment variable holding the whole URL.
    url: str | None = Field(default=None, description="connection URL without a password")
    url_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                description="environment variable holding the connection URL")
    master: str | None = Field(default=None, description="spark: the master of a local session, e.g. `local[2]` "
                                                         "(or `url: sc://host:15002` for Spark Connect)")
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000,
                            description="rows read and committed at a time when copying a database table")
    # Connector-specific settings (URLs, account ids...); secrets never go here.
    options: dict[str, Any] = {}
    schedule: str | None = Field(default=None, description="when `kpilot worker` (or `kpilot serve`) syncs the "
                                                            "source: a cron expression in the workspace's time zone")

    @field_validator("tables", mode="before")
    @classmethod
    def _push_list(cls, value: Any, info: ValidationInfo) -> Any:
        # A push source lists its tables: `tables: [crm_calls]` stands for `tables: {crm_calls: {}}`.
        if info.data.get("type") == "push" and isinstance(value, list):
            return {name: {} for name in value}
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            parse_cron(value)  # a CronError is a ValueError: reported at the field's line in kpilot.yaml
        return value

    @property
    def file_tables(self) -> dict[str, str] | None:
        """`tables` of a file source (table -> file or sheet); the validator guarantees plain names."""
        if self.tables is None:
            return None
        return {k: v for k, v in self.tables.items() if isinstance(v, str)}

    def table_specs(self) -> dict[str, SourceTable]:
        """`tables` of a database source, each as its settings (a plain name is a full copy of that table)."""
        out: dict[str, SourceTable] = {}
        for name, value in (self.tables or {}).items():
            spec = SourceTable(table=value) if isinstance(value, str) else value
            if self.type in ENGINE_SOURCE_TYPES:  # always in place; a file table has no catalog name
                out[name] = spec.model_copy(update={"mode": "in_place"} if spec.path else
                                            {"mode": "in_place", "table": spec.table or name})
            else:
                out[name] = spec if spec.table else spec.model_copy(update={"table": name})
        return out

    @model_validator(mode="after")
    def _connection(self) -> Source:
        if self.type in FILE_SOURCE_TYPES:
            if any(not isinstance(v, str) for v in (self.tables or {}).values()):
                raise ValueError(msg("`tables:` of a file source maps each table to a file or sheet name, e.g. "
                                     "`tables: {{deals: deals_2026.csv}}`; cursor, primary_key and mode are "
                                     "for database sources"))
            if self.url or self.url_env:
                raise ValueError(msg("url and url_env are for database sources; a {type} source reads `path:`",
                                     type=self.type))
        if self.type in ENGINE_SOURCE_TYPES:
            self._engine_settings()
        if self.master is not None and self.type != "spark":
            raise ValueError(msg("`master:` is for spark sources (e.g. `master: local[2]`); a {type} source has "
                                 "none. Fix: remove it", type=self.type))
        if self.type not in ENGINE_SOURCE_TYPES and any(
                isinstance(v, SourceTable) and (v.path is not None or v.format is not None)
                for v in (self.tables or {}).values()):
            raise ValueError(msg("a table's `path:` and `format:` are for spark and chdb sources; a {type} source "
                                 "names its tables with `table:`", type=self.type))
        if self.type in SERVER_SOURCE_TYPES:
            if bool(self.url) == bool(self.url_env):
                raise ValueError(msg("a {type} source needs `url_env:` (the name of an environment variable "
                                     "holding the connection URL) or `url:` (a URL without a password)",
                                     type=self.type))
            if self.url and _has_password(self.url):
                raise ValueError(msg("the `url:` of source '{source}' holds a password; kpilot.yaml is no place "
                                     "for secrets. Fix: put the URL in an environment variable and name it with "
                                     "`url_env:`", source=self.key))
        if self.type in ("sqlite", "duckdb") and not self.path:
            raise ValueError(msg("a {type} source needs `path:`, the database file (relative to the workspace "
                                 "folder)", type=self.type))
        in_place = [name for name, spec in self.table_specs().items() if spec.mode == "in_place"]
        if in_place and self.type not in IN_PLACE_SOURCE_TYPES + ENGINE_SOURCE_TYPES:
            raise ValueError(msg("`mode: in_place` (computing inside the database) is not supported yet for {type} "
                                 "sources (table(s) {tables}); it works with postgres, mysql, sqlite and duckdb "
                                 "sources. Fix: use `mode: copy` (the default)", type=self.type,
                                 tables=", ".join(in_place)))
        if self.type == "push":
            if not self.tables:
                raise ValueError(msg("a push source needs `tables:`, the tables other systems push rows to, e.g. "
                                     "`tables: [crm_calls]`"))
            if any(spec != SourceTable() for spec in self.tables.values()):
                raise ValueError(msg("the tables of a push source take no settings; list their names, e.g. "
                                     "`tables: [crm_calls]`"))
        if self.type in ENGINE_SOURCE_TYPES and not self.tables:
            raise ValueError(msg("a {type} source needs `tables:`, the tables it computes, e.g. `tables: {{orders: "
                                 "{{path: data/orders.parquet}}}}` or `tables: {{orders: shop.orders}}`",
                                 type=self.type))
        if self.type in SQL_SOURCE_TYPES and not self.tables:
            raise ValueError(msg("a {type} source needs `tables:`, the tables to copy, e.g. `tables: {{orders: "
                                 "{{table: public.orders, cursor: updated_at, primary_key: id}}}}`",
                                 type=self.type))
        return self

    def _engine_settings(self) -> None:
        """Where a spark, chdb or clickhouse source computes, and what its tables are."""
        if self.type == "spark":
            if bool(self.url) == bool(self.master):
                raise ValueError(msg("a spark source needs `master:` (a local session, e.g. `master: local[2]`) or "
                                     "`url:` (Spark Connect, e.g. `url: sc://spark.example.com:15002`), one of "
                                     "the two"))
            if self.url_env:
                raise ValueError(msg("a spark source takes `url:` (Spark Connect) or `master:`, not `url_env:`"))
            if self.url and not self.url.startswith("sc://"):
                raise ValueError(msg("the `url:` of a spark source is a Spark Connect address starting with "
                                     "sc://, e.g. `url: sc://spark.example.com:15002`, not \"{url}\"",
                                     url=self.url))
            if self.url and _has_password(self.url):
                raise ValueError(msg("the `url:` of source '{source}' holds a password; kpilot.yaml is no place "
                                     "for secrets", source=self.key))
        elif self.type == "chdb":
            if self.url or self.url_env or self.path:
                raise ValueError(msg("a chdb source runs ClickHouse inside kpilot: it takes no `url:`, `url_env:` "
                                     "or `path:`; each table names its file with `path:`, e.g. `tables: {{orders: "
                                     "{{path: data/orders.parquet}}}}`"))
        elif bool(self.url) == bool(self.url_env):
            raise ValueError(msg("a clickhouse source needs `url_env:` (the name of an environment variable "
                                 "holding the server's URL, e.g. https://user:password@host:8443/db) or `url:` (a "
                                 "URL without a password)"))
        elif self.url and _has_password(self.url):
            raise ValueError(msg("the `url:` of source '{source}' holds a password; kpilot.yaml is no place for "
                                 "secrets. Fix: put the URL in an environment variable and name it with "
                                 "`url_env:`", source=self.key))
        formats = ENGINE_FORMATS[self.type]
        for name, value in (self.tables or {}).items():
            if not isinstance(value, SourceTable):
                continue
            if (value.cursor is not None or value.primary_key is not None
                    or (value.mode == "copy" and "mode" in value.model_fields_set)):
                raise ValueError(msg("table {table}: a {type} source computes its tables where they are, so it "
                                     "takes no `cursor:`, `primary_key:` or `mode: copy`. Fix: remove them",
                                     table=name, type=self.type))
            if value.path is not None and value.table is not None:
                raise ValueError(msg("table {table} has both `table:` and `path:`; give one: `table:` (the "
                                     "engine's catalog) or `path:` (a file or folder)", table=name))
            if value.path is not None and not formats:
                raise ValueError(msg("table {table}: a clickhouse source reads tables of the server, named with "
                                     "`table:` (e.g. `table: shop.orders`); `path:` is for spark and chdb",
                                     table=name))
            if value.format is not None and value.path is None:
                raise ValueError(msg("table {table}: `format:` goes with `path:` (the file's format)", table=name))
            if value.format is not None and value.format not in formats:
                raise ValueError(msg("table {table}: unknown format '{format}' for a {type} source; formats: "
                                     "{formats}", table=name, format=value.format, type=self.type,
                                     formats=", ".join(formats)))
            if value.path is not None and (value.path.startswith(("/", "~")) or ".." in value.path.replace(
                    "\\", "/").split("/")):
                raise ValueError(msg("table {table}: `path: {path}` is outside the workspace folder; a table's "
                                     "path is relative to the folder of kpilot.yaml, e.g. `data/orders.parquet`",
                                     table=name, path=value.path))


# Words whose usual spelling a plain capitalisation gets wrong.
KNOWN_WORDS = {"linkedin": "LinkedIn", "seo": "SEO", "sea": "SEA", "crm": "CRM", "pme": "PME", "eti": "ETI",
               "ge": "GE", "tpe": "TPE", "b2b": "B2B", "b2c": "B2C", "saas": "SaaS", "hubspot": "HubSpot",
               "google": "Google", "facebook": "Facebook", "youtube": "YouTube", "tiktok": "TikTok", "ads": "Ads",
               "id": "ID", "kpi": "KPI", "mrr": "MRR", "arr": "ARR", "sms": "SMS", "api": "API", "ai": "AI"}


def readable(key: str) -> str:
    """A key as words: `linkedin_ads` -> "LinkedIn Ads", `paid_search` -> "Paid search"; a value that is already
    words (has a space or capitals) is kept as it is."""
    if " " in key or key != key.lower() or not key:
        return key
    words = [w for w in key.replace("-", "_").split("_") if w]
    out = []
    for i, w in enumerate(words):
        known = KNOWN_WORDS.get(w)
        out.append(known if known else (w.capitalize() if i == 0 else w))
    # After a brand, the next word takes a capital too: "LinkedIn Ads", "Google Ads".
    for i in range(1, len(out)):
        if words[i - 1] in KNOWN_WORDS and out[i - 1][:1].isupper() and words[i] in KNOWN_WORDS:
            out[i] = KNOWN_WORDS[words[i]]
    return " ".join(out)


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    if "password=" in url.lower():  # a key=value connection string
        return True
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


class Validity(Spec):
    """Columns bounding when a row is valid: from <= t < to; an empty `to` means still valid."""

    from_: str = Field(alias="from")
    to: str | None = None


class Join(Spec):
    model: str
    on: str | dict[str, str] = Field(description="a column present on both sides, or {local: remote}")
    how: Literal["left", "inner"] = "left"

    def pairs(self) -> list[tuple[str, str]]:
        if isinstance(self.on, str):
            return [(self.on, self.on)]
        return list(self.on.items())


class Model(Spec):
    """A table of rows (events or states) that metrics aggregate."""

    key: str = Field(pattern=KEY_PATTERN)
    table: str
    source: str | None = None
    time: str | None = None
    validity: Validity | None = None
    timezone: str | None = Field(
        default=None,
        description="time zone of naive timestamps in this table; default: the workspace time zone",
    )
    dimensions: list[str] = []
    joins: list[Join] = []
    columns: dict[str, str] | None = Field(default=None, description="declared column types, e.g. {amount: double}")
    primary_key: str | None = None


class RatioPart(Spec):
    """Numerator or denominator of a ratio: an aggregate over a model, or another metric."""

    model: str | None = None
    measure: str | None = None
    filter: str | None = None
    time: str | None = None
    metric: str | None = None
    offset: int = 0


class FormulaInput(Spec):
    metric: str
    offset: int = 0
    alias: str | None = Field(default=None, pattern=KEY_PATTERN)

    @property
    def name(self) -> str:
        return self.alias or self.metric


class Target(Spec):
    """A target value per period of the metric's grain, for the periods from `from` to `to` inclusive."""

    from_: date | str | int = Field(alias="from")
    to: date | str | int | None = None
    value: float


class Bands(Spec):
    """Shares of target: achievement >= green is green, >= amber is amber, otherwise red."""

    green: float = 1.0
    amber: float = 0.9

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.amber > self.green:
            raise ValueError(msg("amber ({amber}) must not be above green ({green})", amber=self.amber,
                                 green=self.green))
        return self


class When(Spec):
    """The condition of a decision rule; all given conditions must hold."""

    status: Literal["red", "amber", "green", "not_green"] | None = None
    below_target: float | None = Field(default=None, gt=0, description="value < share x target")
    above_target: float | None = Field(default=None, gt=0, description="value > share x target")
    forecast: Literal["miss", "hit"] | None = None
    trend: Literal["up", "down"] | None = None
    change_below: float | None = Field(default=None, description="period-over-period change below, e.g. -0.1")
    change_above: float | None = None
    periods: int = Field(default=1, ge=1, le=52, description="for this many consecutive periods")

    @model_validator(mode="after")
    def _not_empty(self) -> When:
        conds = [self.status, self.below_target, self.above_target, self.forecast, self.trend,
                 self.change_below, self.change_above]
        if all(c is None for c in conds):
            raise ValueError(msg(
                "a decision rule needs a condition: status, below_target, above_target, forecast, "
                "trend, change_below or change_above"))
        return self


class DecisionRule(Spec):
    when: When
    owner: str
    action: str
    review_after: int | None = Field(default=None, ge=1, description="periods after which the decision is reviewed")


class Metric(Spec):
    key: str = Field(pattern=KEY_PATTERN)
    name: str | None = None
    description: str | None = None
    kind: Kind | None = None
    owners: list[str] = []
    type: MetricType = MetricType.simple
    model: str | None = None
    time: str | None = None
    measure: str | None = None
    filter: str | None = None
    numerator: RatioPart | None = None
    denominator: RatioPart | None = None
    formula: str | None = None
    inputs: list[FormulaInput] = []
    window: int | None = Field(default=None, ge=1, description="cumulative: rolling window in periods")
    to_date: Grain | None = Field(default=None, description="cumulative: reset at each period of this grain")
    grain: Grain = Grain.month
    unit: str | None = None
    direction: Direction = Direction.up
    targets: list[Target] = []
    bands: Bands = Bands()
    decision: DecisionRule | None = None
    dimensions: list[str] | None = None
    pacing: Literal["auto", "linear", "seasonal", "none"] = "auto"
    nature: Literal["flow", "level"] | None = Field(
        default=None, description="flow (adds up over a period, judged at pace) or level (a state, judged as it "
                                  "stands); default: inferred from the definition")

    @property
    def label(self) -> str:
        return self.name or self.key

    @property
    def is_kpi(self) -> bool:
        """A metric becomes a KPI when it has a target, an owner and a decision."""
        return bool(self.targets and self.owners and self.decision)


class Workspace(Spec):
    workspace: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
    title: str | None = None
    language: Language = Language.en
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    week_start: WeekStart = WeekStart.monday
    vision: Vision | None = None
    teams: list[Team] = []
    sources: list[Source] = []
    models: list[Model] = []
    north_star: str | None = None
    board: list[str] = []
    metrics: list[Metric] = []
    channels: list[Channel] = []
    labels: dict[str, str] = Field(default={}, description="words for dimension names and values, e.g. "
                                                            "{channel: Canal, linkedin_ads: LinkedIn Ads}")
    alerts: AlertSettings = AlertSettings()
    review: Review | None = None
    base_url: str | None = Field(default=None, description="the web app's public address, for links in alerts and "
                                                            "reviews, e.g. https://kpilot.example.com")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value).rstrip("/")

    # Lookups by key (validation guarantees keys are unique).
    def metric(self, key: str) -> Metric:
        for m in self.metrics:
            if m.key == key:
                return m
        raise KeyError(key)

    def unit_of(self, key: str) -> str | None:
        """The unit a metric's values are shown in, by one rule everywhere: its `unit:`, else "count" for a count
        of rows (shown as whole numbers), else none."""
        m = self.metric(key)
        if m.unit:
            return m.unit
        from kpilot.model.expressions import counts_rows  # expressions needs sqlglot: loaded when asked

        counted = m.type is not MetricType.derived and m.measure is not None and counts_rows(m.measure)
        return "count" if counted else None

    def model_by_key(self, key: str) -> Model:
        for m in self.models:
            if m.key == key:
                return m
        raise KeyError(key)

    def team(self, key: str) -> Team:
        for t in self.teams:
            if t.key == key:
                return t
        raise KeyError(key)

    def team_name(self, key: str) -> str:
        """A team's name as people know it (its key when the workspace declares no such team)."""
        try:
            return self.team(key).label
        except KeyError:
            return key

    def label_of(self, key: str) -> str:
        """A dimension's name or value in people's words: its `labels:` entry, else a readable default
        (`linkedin_ads` -> "LinkedIn Ads", `leads.channel` -> "Channel")."""
        if key in self.labels:
            return self.labels[key]
        short = key.rsplit(".", 1)[-1]
        if short in self.labels:
            return self.labels[short]
        return readable(short)

    def channel(self, key: str) -> Channel:
        for c in self.channels:
            if c.key == key:
                return c
        raise KeyError(key)

    def in_place_tables(self) -> dict[str, str]:
        """Table -> key of the database source computing it in place (`mode: in_place`)."""
        return {name: s.key for s in self.sources if s.type in IN_PLACE_SOURCE_TYPES + ENGINE_SOURCE_TYPES
                for name, spec in s.table_specs().items() if spec.mode == "in_place"}

    def engine_of(self, model_key: str) -> str | None:
        """Where a model's metrics are computed: the key of its in-place source, or None (the warehouse)."""
        return self.in_place_tables().get(self.model_by_key(model_key).table)

    @property
    def metric_keys(self) -> list[str]:
        return [m.key for m in self.metrics]
