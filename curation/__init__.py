"""Ray-agnostic stage logic: functions and callable classes over batches of columns."""
