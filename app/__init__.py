"""eSIM shop backend with built-in funnel analytics."""
