# Two commands do all the set-up on a machine that has only Python 3.11:
#   make demo   -- virtualenv, embedded Redis, SQLite, migrate, seed, web + worker + settlement
#   make test   -- every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint bench clean translations browser

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP) browser

# The browser tests drive Debian's Chromium (Playwright's own download does not work on these machines);
# CJK fonts make the zh-CN screenshots readable. Installed when missing and we are root (CI, the dev box).
browser:
	@command -v chromium >/dev/null 2>&1 && [ -d /usr/share/fonts/opentype/noto ] || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install -y chromium fonts-noto-cjk (the browser tests need it)"; fi; }

# From the source tree (python -m): the demo starts the Alipay sandbox, which is not part of the installed package.
demo: $(STAMP)
	$(BIN)/python -m web.cli demo

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check engine campaigns games rewards challenges alipay_platform alipay_sandbox web tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) instance .pytest_cache

# After changing a label in web/pages: extract, merge into the zh-CN catalogue, translate, compile (.mo committed).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o web/translations/messages.pot --no-location --omit-header .
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l zh_Hans_CN --ignore-obsolete
	$(BIN)/pybabel compile -d web/translations
