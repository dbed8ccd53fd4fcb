"""DingTalk (钉钉): configuration and identities only; the channel itself is issue 13."""
