"""五联五互 - the exchange service: what the city and its districts share, and how."""
