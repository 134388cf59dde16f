"""AWS side of vsrflow: the only package that imports boto3 (S3 trigger, job records, delivery)."""
