"""The Alipay open platform, through the official alipay-sdk-python: the gateway client (login, the two Alipay
reward adapters), RSA2 signing through OpenSSL, certificate mode, paying held orders and their notifications,
and the jobs that close trades and refund late payments."""
