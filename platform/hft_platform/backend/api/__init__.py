"""HTTP routes of the backend, grouped by resource, and the router that joins them."""
