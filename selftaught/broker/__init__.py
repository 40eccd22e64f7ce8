"""The trusted broker between untrusted code and the LM, the scorers and the budgets."""

from selftaught.broker.broker import Broker, Evaluation, ImproverRun, Utility
from selftaught.broker.budget import RunBudget

__all__ = ["Broker", "Evaluation", "ImproverRun", "RunBudget", "Utility"]
