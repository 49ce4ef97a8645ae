"""The catalog event stream: the envelope both services agree on, appending to the stream, the
generic consumer-group consumer, dead letters, trimming, and the operator's CLI."""
