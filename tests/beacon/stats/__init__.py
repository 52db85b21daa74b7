"""Tests of the statistics: queries, accounts, dashboard, API, command line."""
