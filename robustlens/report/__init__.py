"""The study report: a document built from a study's results, rendered as one HTML file."""
