"""ladon_tasks: background tasks for the Ladon web-service framework."""

from setuptools import find_packages, setup

setup(
    name="ladon_tasks",
    version="0.1.0",
    description="Background tasks (thread or multiprocessing mode, Redis) for Ladon web services",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["ladon_tasks", "ladon_tasks.*"]),
    package_data={"ladon_tasks": ["py.typed", "console/static/*"]},
    python_requires=">=3.11",
    install_requires=[
        "ladon==1.0.7",
        "redis>=5",
        "multiprocessing-logging>=0.3.4",
        "werkzeug>=3",
        "defusedxml>=0.7",
        "prometheus-client>=0.17",
        "orjson>=3.9",
    ],
    extras_require={
        "client": ["rich>=13", "zeep>=4.2"],
        "celery": ["celery[redis]>=5.4"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2",
            "zeep>=4.2",
            "rich>=13",
            "requests>=2.31",
            "ruff>=0.6",
            "suds-community>=1.1",
            "jsonrpcclient>=4",
            "jsonrpclib-pelix>=0.4",
            "hypothesis>=6",
            "celery[redis]>=5.4",
            "selenium>=4.10",
        ],
        "bench": ["rq>=1.16", "requests>=2.31", "psutil>=5.9", "celery>=5.3", "gunicorn>=22"],
        "docs": ["sphinx>=7"],
    },
    entry_points={"console_scripts": ["ladon-tasks=ladon_tasks.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Ladon",
        "Topic :: Internet :: WWW/HTTP :: WSGI :: Application",
    ],
)
