"""One-off operator commands of the cart service (`python -m app_cart.tools.<name>`)."""
