from .importers import load_model
from .importers.model_file import export
