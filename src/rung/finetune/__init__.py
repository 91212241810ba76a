"""Fine-tuning, done the way the seeds say: audited data, held-out val for early stopping,
the best checkpoint kept, curves recorded and read for overfitting, the result measured on the
same test split as every cheaper rung."""
