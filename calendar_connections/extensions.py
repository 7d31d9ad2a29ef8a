"""The service's Flask extensions, created unbound and bound in ``create_app``."""

from __future__ import annotations

from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from .models.base import Base
from .openapi import ProblemApi

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = ProblemApi()
jwt = JWTManager()
