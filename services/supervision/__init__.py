"""监督 - the supervision service: inspections, rectification, risk points, ecology assessment."""
