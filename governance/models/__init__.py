# Governance holds two areas, each in its own modules: policies (rules, evaluations, waivers,
# votes, glossary) and quality (data sources, checks, runs). Models are imported here so Django
# finds them.
from governance.models.datasource import DataSource
from governance.models.policies import (  # noqa: F401
    Compliance,
    ComplianceChange,
    DirtyProduct,
    EvaluationRun,
    GlossaryTerm,
    Policy,
    PolicyRunSummary,
    PolicyVote,
    Waiver,
)

__all__ = ["DataSource"]
from governance.models.incidents import Incident, IncidentEvent  # noqa: E402,F401
from governance.models.quality import (  # noqa: E402,F401
    ProductQuality,
    QualityCheck,
    QualityRun,
    Webhook,
    WebhookDelivery,
)
