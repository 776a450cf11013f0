"""Sans-IO server side of DLMS/COSEM used by the simulated meter fleet."""
