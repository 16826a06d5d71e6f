"""Services: the logic behind the routers."""
