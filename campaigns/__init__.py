"""Campaign definitions: SQL models, the definition schema, lifecycle, versions and live state."""
