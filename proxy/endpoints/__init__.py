"""The model endpoints the proxy serves; each supplies only what differs between them."""

from .base import EndpointSpec
from .chat import CHAT
from .completions import COMPLETIONS
from .embeddings import EMBEDDINGS
from .responses import RESPONSES

MODEL_ENDPOINTS: tuple[EndpointSpec, ...] = (CHAT, COMPLETIONS, RESPONSES, EMBEDDINGS)

__all__ = ["CHAT", "COMPLETIONS", "EMBEDDINGS", "MODEL_ENDPOINTS", "RESPONSES", "EndpointSpec"]
