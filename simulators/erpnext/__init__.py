"""ERPNext v15 / Frappe simulator (see ``simulator.py``)."""

from simulators.erpnext.simulator import ERPNextSimulator

__all__ = ["ERPNextSimulator"]
