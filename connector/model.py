"""The loaded configuration as frozen dataclasses: what every later stage reads.

Built once by `connector.build` from schema-valid data. Positions (`file`, `line`, `column`)
travel with each element so that analysis and runtime errors can point at the YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Canonical order fields every normalised order has (see docs/format.md, "canonical order").
CANONICAL_FIELDS = (
    "id", "system", "status", "actor", "fulfilment", "created_at", "updated_at", "buyer",
    "items", "shipping", "totals", "attributes", "raw",
)
#: Known sub-fields of the structured canonical fields, for reference checks.
CANONICAL_SUBFIELDS: dict[str, tuple[str, ...]] = {
    "buyer": ("name", "email", "first_name", "last_name"),
    "shipping": ("address", "tracking", "carrier", "method", "shipped_at"),
    "totals": ("amount", "currency"),
}
ITEM_FIELDS = ("id", "sku", "quantity", "quantity_shipped", "price", "name")

BUILTIN_ACTIONS = ("report", "watch")


@dataclass(frozen=True)
class Where:
    """A position in a YAML file."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Setting:
    """A system or flow setting: declared so references to it can be checked."""

    name: str
    default: Any = None
    required: bool = False
    secret: bool = False
    kind: str = "string"  # string | list | integer | boolean
    enum: tuple[Any, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class RateLimit:
    rate: float  # requests per second
    burst: int


@dataclass(frozen=True)
class Request:
    """One HTTP request, every string in it a Jinja template (rendered by `templates`)."""

    method: str
    path: str = ""  # appended to the system's base URL; interpolations are URL-escaped
    url_from: str = ""  # instead of path: a JMESPath into earlier step outputs (presigned URLs)
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None  # a data structure whose string leaves are templates; JSON-encoded
    form: dict[str, str] = field(default_factory=dict)
    content: str | None = None  # a raw body template (XML feeds); values are XML-escaped
    content_type: str = ""
    operation: str = ""  # rate-limit bucket name
    where: Where = Where("")


@dataclass(frozen=True)
class Step:
    name: str
    request: Request
    expect: tuple[int, ...] = (200,)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> JMESPath on the response
    poll: Poll | None = None
    when: Condition | None = None
    fail_if: str = ""  # JMESPath on the response: the step failed when truthy (Magento's `false`)
    fail_message: str = ""  # JMESPath on the response: the remote side's own words for it
    response: ResponseFormat | None = None  # how to read a body that is not plain JSON
    where: Where = Where("")


@dataclass(frozen=True)
class ResponseFormat:
    """How a step's body is read (see `connector.documents`): an XML document, perhaps
    compressed with the algorithm an earlier step's output names (`compression_from`)."""

    format: str = "json"  # json | xml
    lists: tuple[str, ...] = ()  # XML elements always read as lists
    compression_from: str = ""  # JMESPath over the step context: GZIP, or empty/null


@dataclass(frozen=True)
class Poll:
    """Repeat a step until `until` (JMESPath, truthy) holds; `fail_if` makes it fail."""

    until: str
    fail_if: str = ""
    interval_seconds: float = 5.0
    max_attempts: int = 60


@dataclass(frozen=True)
class BatchErrors:
    """Where a batch's last step says which members it refused: `source` is a JMESPath over
    the step context giving a list; each item's `member` field names the member's position
    (1-based, as the templates number them) and `message` the remote side's words."""

    source: str
    member: str
    message: str = ""


@dataclass(frozen=True)
class Pages:
    """A step answered a page at a time: the response's next-page token (JMESPath) goes
    back in `token_param`, alone when `token_alone` (SP-API getFeeds: the token must be
    the only parameter), until a page has none."""

    next_token: str
    token_param: str
    token_alone: bool = False


@dataclass(frozen=True)
class Batch:
    """An action whose requests are gathered across the orders of a run and sent once.

    The steps see `batch.members` (each member's own context and its `position`) besides
    the first member's context. `effect` names the step that acts (Amazon's createFeed):
    before it nothing has happened, after it only reads follow, so a run that dies before
    it is abandoned and re-planned, and one whose effect step got no answer is settled by
    the `recover` step (a poll: until nothing the effect may have started is in flight)
    before any member is re-planned. A poll step never sleeps in the run: the batch waits
    in the state store and a later sweep (this run or the next) checks it again.
    """

    max_orders: int = 1
    group_by: str = ""  # a template over a member's context: one batch per distinct value
    effect: str = ""
    errors: BatchErrors | None = None
    recover: Step | None = None
    recover_pages: Pages | None = None  # the recover read is done when done on every page
    declared: bool = False  # False: the default batch of one that a polling action gets


@dataclass(frozen=True)
class Param:
    name: str
    default: Any = None
    required: bool = False
    enum: tuple[Any, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class Settle:
    """How a write whose answer was lost is settled when a read of the order cannot show its
    effect (a VTEX reservation): `step` reads the effect; an `expect` status says it is
    there (its outputs are the action's), an `absent` one that it is not (sent again)."""

    step: Step
    absent: tuple[int, ...] = (404,)


@dataclass(frozen=True)
class Action:
    """An action a system offers: a short sequence of HTTP steps."""

    system: str
    name: str
    description: str
    params: dict[str, Param]
    precondition: Condition | None
    steps: tuple[Step, ...]
    mutating: bool = True
    where: Where = Where("")
    # Whether the order acted on can call for another step once this action is done, so
    # that the engine reads it again and re-evaluates in the same run: True (always, the
    # default), False (never: the action leaves no transitional state), or a condition over
    # the action's context before it is sent (VTEX: a cancel in ready-for-handling leaves
    # cancellation-requested, which takes a second cancel).
    follow_up: Condition | bool = True
    # What the action does to the order, for conflict analysis: cancel, advance (moves it
    # forward: ship, acknowledge, complete), create, note, read; "" = guessed from the name.
    kind: str = ""
    # Gathered across orders and waited for without blocking (see Batch); None: sent at once.
    batch: Batch | None = None
    settle: Settle | None = None  # its effect's own read, for an unknown outcome

    @property
    def qualified(self) -> str:
        return f"{self.system}.{self.name}"


@dataclass(frozen=True)
class Pagination:
    items: str  # JMESPath to the records in a page
    next_token: str = ""  # JMESPath to the next-page token; empty: single page
    token_param: str = ""  # query parameter that carries the token
    page_param: str = ""  # or: page-number pagination
    total_pages: str = ""  # JMESPath to the page count (page-number pagination)
    # or: JMESPath to the next page's whole query string ("?a=1&b=2", Walmart's nextCursor):
    # the next request is the listing path with exactly that query; none: the last page
    next_query: str = ""
    # or: offset pagination: the query parameter that carries the offset of the page's first
    # record (0 first, then the records read so far); `total` (JMESPath, optional) is the
    # record count, else an empty page ends the listing (offset/limit APIs)
    offset_param: str = ""
    total: str = ""


@dataclass(frozen=True)
class Listing:
    """How to list the orders changed in a time window."""

    request: Request
    pagination: Pagination
    min_age_seconds: int = 0  # upper bound must be at least this old (Amazon: 120)
    # A query parameter whose template renders a list: one listing per value (Walmart
    # answers one shipNodeType per call); "": one listing
    fan_out: str = ""
    where: Where = Where("")


@dataclass(frozen=True)
class Lookup:
    """How to find this system's order that corresponds to another system's order."""

    request: Request
    found: str  # JMESPath on the response: the raw order, or null when absent
    not_found_status: tuple[int, ...] = (404,)
    where: Where = Where("")


@dataclass(frozen=True)
class Notifications:
    """Change notifications from a message queue (`notifications:`): each accepted message
    names one order (and its partition) to re-read by id; the listing stays the catch-up."""

    transport: str  # sqs
    queue_url: str  # template over the settings; renders empty: notifications are off
    order_id: str  # JMESPath over the message body
    partition: str = ""  # JMESPath over the message body; "": one partition
    accept: str = ""  # JMESPath over the message body; "": every message
    where: Where = Where("")


# Auth kinds whose token_request yields an access token ({{ token }}); lwa is the old name
# of oauth2_refresh_token.
TOKEN_KINDS = frozenset({"oauth2_refresh_token", "oauth2_client_credentials", "lwa"})


@dataclass(frozen=True)
class Auth:
    kind: str  # none | headers | bearer | oauth2_refresh_token | oauth2_client_credentials (lwa)

    @property
    def exchanges_token(self) -> bool:
        """Whether the token_request exchanges the settings for a cached access token."""
        return self.kind in TOKEN_KINDS
    headers: dict[str, str] = field(default_factory=dict)
    token_request: Request | None = None
    token_field: str = "access_token"
    expires_field: str = "expires_in"


@dataclass(frozen=True)
class Normalise:
    """JMESPath expressions from the raw record to each canonical field."""

    fields: dict[str, str]
    maps: dict[str, dict[str, Any]]  # canonical field -> raw value -> canonical value
    items: dict[str, str]  # item field -> JMESPath relative to one item
    items_path: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Domains:
    status: tuple[str, ...]
    actor: tuple[str, ...]
    fulfilment: tuple[str, ...]
    terminal: tuple[str, ...] = ()


@dataclass(frozen=True)
class System:
    """A mapping file: everything about one system."""

    name: str
    title: str
    settings: dict[str, Setting]
    base_url: str
    auth: Auth
    rate_limits: dict[str, RateLimit]
    domains: Domains
    normalise: Normalise
    listing: Listing | None
    get_order: Lookup | None
    lookups: dict[str, Lookup]  # keyed by the *other* system's name
    actions: dict[str, Action]
    where: Where
    # What identifies the account the server's rate-limit buckets belong to (a template over
    # the settings; SP-API's are per application and seller): processes whose rendering is
    # the same share buckets through the state store. "" = one account per system name.
    rate_limits_account: str = ""
    notifications: Notifications | None = None
    # Response headers that report an operation's current rate (requests per second), tried
    # in order: the bucket's refill follows the server's word. () = the declared rates only.
    rate_limit_headers: tuple[str, ...] = ()
    # JMESPaths over an error response's JSON body giving the server's own words, tried in
    # order (`connection.error_message`); () = the protocol-generic account only.
    error_messages: tuple[str, ...] = ()
    # Query parameters that carry credentials in URLs this system issues or accepts (presigned
    # upload URLs' signatures): a cassette masks their values by name (`secret_query_params`).
    secret_query_params: tuple[str, ...] = ()
    # The setting (a list) whose values split this system's work as a source: each value is
    # a partition with its own cursor, watch list and worker job (`partition_by`); "" = one.
    partition_by: str = ""
    # Further listings read after `listing` in the same run (orders.list as a list: a market
    # that lists marketplace-fulfilled orders at another endpoint); an order in two is read once.
    more_listings: tuple[Listing, ...] = ()
    # The setting whose value picks a variant (`variant_by`) and the variants by value, each a
    # whole System built from the mapping with that overlay merged in (`connector.variants`);
    # "" / {}: the mapping has none.
    variant_by: str = ""
    variants: dict[str, System] = field(default_factory=dict)

    def variant_for(self, settings: Mapping[str, Any]) -> System:
        """The system as the resolved `settings` select it: the variant named by the
        `variant_by` setting's value, or this system itself (no variant for that value)."""
        if not self.variant_by:
            return self
        return self.variants.get(str(settings.get(self.variant_by) or ""), self)


# --- rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A node of the closed condition language (see `conditions`)."""

    op: str  # eq ne in not_in exists lt le gt ge all any not expr true
    path: str = ""
    value: Any = None
    children: tuple[Condition, ...] = ()
    where: Where = Where("")


@dataclass(frozen=True)
class ActionCall:
    """An action named in a rule's `then`, with its arguments."""

    action: str  # qualified: system.name, or a builtin (report, watch)
    args: dict[str, Any]
    where: Where = Where("")

    @property
    def system(self) -> str:
        return self.action.split(".", 1)[0] if "." in self.action else ""

    @property
    def name(self) -> str:
        return self.action.split(".", 1)[-1]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    when: Condition
    then: tuple[ActionCall, ...]
    where: Where


@dataclass(frozen=True)
class RuleTest:
    name: str
    order: dict[str, Any]
    target: dict[str, Any] | None
    settings: dict[str, Any]
    expect: tuple[ActionCall, ...]
    expect_rules: tuple[str, ...] | None
    raw: bool  # `order` is a raw API record, to be normalised by the source mapping
    target_raw: bool  # `target` is a raw API record of the target system
    systems: dict[str, dict[str, Any]]  # system setting overrides
    outputs: dict[str, dict[str, Any]]  # outputs of earlier actions, by action name
    where: Where


@dataclass(frozen=True)
class Flow:
    """A rule file: source, target, hit policy, settings and rules."""

    name: str
    source: str
    target: str
    hit_policy: str  # first | all
    description: str
    settings: dict[str, Setting]
    rules: tuple[Rule, ...]
    tests: tuple[RuleTest, ...]
    where: Where
    # A setting of the source system (a list) that partitions this flow's work, instead of
    # the source mapping's own `partition_by`; "" = the mapping's.
    partition_by: str = ""

    def partition_setting(self, source: System | None) -> str:
        """The source setting whose values are this flow's partitions ("" = one partition)."""
        return self.partition_by or (source.partition_by if source is not None else "")


@dataclass(frozen=True)
class Project:
    """connector.yaml: the systems in use with their settings, the flows, the state store."""

    root: str
    systems: dict[str, System]
    settings: dict[str, dict[str, Any]]  # system -> setting -> value (before environment)
    flows: dict[str, Flow]
    flow_settings: dict[str, dict[str, Any]]
    state: str
    where: Where
