"""Building the function's zip for a target Lambda runtime, and running it locally."""
