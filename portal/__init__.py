"""The customer portal: bills, usage graphs and outage notices."""
