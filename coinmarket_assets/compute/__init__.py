"""Pure statistics on pandas DataFrames, free of Dagster and the database."""
