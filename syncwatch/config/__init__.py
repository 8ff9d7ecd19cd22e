"""syncwatch's configuration: pydantic models, YAML loading, secret references (DESIGN §10).

``load_config(path)`` returns a validated ``Config`` or raises ``ConfigError`` listing every
problem as ``file: key.path: reason``. The package is split by section so each module stays
small; import from here. The reference for operators is docs/configuration.md, and
config/syncwatch.example.yaml shows every key.
"""

from syncwatch.config.accounts import (
    ACCOUNT_TYPES,
    VENDORS,
    Account,
    AccountBase,
    ClientCredentials,
    DynamicsAccount,
    EloquaAccount,
    HubSpotAccount,
    JwtBearer,
    MarketoAccount,
    PardotAccount,
    QuotaPolicy,
    SalesforceAccount,
)
from syncwatch.config.contracts import (
    Calendar,
    Contract,
    CreditTier,
    DowntimeRule,
    LatencyObjective,
    OneOffWindow,
    WeeklyWindow,
    load_contract,
)
from syncwatch.config.loader import (
    config_from_data,
    load_config,
    secret_refs,
    summary,
    unresolved_secrets,
)
from syncwatch.config.model import (
    DEFAULT_LISTEN,
    DEFAULT_PORT,
    Config,
    Destination,
    IncidentPolicy,
    Integration,
    Listen,
    NotificationTarget,
    PagerDutyTarget,
    Poll,
    SlackTarget,
    Source,
    TemplateRun,
    WebhookTarget,
)
from syncwatch.config.secrets import LITERAL_SECRET, SecretRef
from syncwatch.config.templates import PLACEHOLDERS, ProbeTemplate, load_template, load_templates

__all__ = [
    "ACCOUNT_TYPES",
    "DEFAULT_LISTEN",
    "DEFAULT_PORT",
    "LITERAL_SECRET",
    "PLACEHOLDERS",
    "VENDORS",
    "Account",
    "AccountBase",
    "Calendar",
    "ClientCredentials",
    "Config",
    "Contract",
    "CreditTier",
    "Destination",
    "DowntimeRule",
    "DynamicsAccount",
    "EloquaAccount",
    "HubSpotAccount",
    "IncidentPolicy",
    "Integration",
    "JwtBearer",
    "LatencyObjective",
    "Listen",
    "MarketoAccount",
    "NotificationTarget",
    "OneOffWindow",
    "PagerDutyTarget",
    "PardotAccount",
    "Poll",
    "ProbeTemplate",
    "QuotaPolicy",
    "SalesforceAccount",
    "SecretRef",
    "SlackTarget",
    "Source",
    "TemplateRun",
    "WebhookTarget",
    "WeeklyWindow",
    "config_from_data",
    "load_config",
    "load_contract",
    "load_template",
    "load_templates",
    "secret_refs",
    "summary",
    "unresolved_secrets",
]
