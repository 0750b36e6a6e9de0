"""Front doors other than OpenAI's API: each module says what its API differs in (see endpoints/)."""
