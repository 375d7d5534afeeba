"""kpilot: from a company's vision to a North Star, 3-5 KPIs, status, forecasts and decisions."""

__version__ = "0.1.0"
