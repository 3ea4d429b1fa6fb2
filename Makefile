.PHONY: demo test install
install:
	pip install -r requirements.txt
demo: install
	python data/prepare.py
	python train.py
	python evaluate.py runs/latest
	python predict.py --model runs/latest examples/article.txt
test:
	pip install -r requirements-dev.txt && pytest
