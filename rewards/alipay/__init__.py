"""Alipay through the official alipay-sdk-python: the gateway client the login and the adapters share."""
