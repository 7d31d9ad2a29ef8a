"""Request and response schemas of the API, named as the seed contract names them; they load
and dump the camelCase JSON (``data_key``) of snake_case attributes."""
