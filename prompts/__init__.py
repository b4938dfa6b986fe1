"""Prompt templates, shipped as package data of `qa.prompts`."""
