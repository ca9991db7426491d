"""An app whose lifespan startup fails: ``chirp run`` must print the reason and exit 1."""

from chirp import App, AppConfig

app = App(AppConfig(skip_contract_checks=True))


@app.route("/")
def index():
    return "never served"


@app.on_startup
async def connect_database():
    raise RuntimeError("db down")
