

def test_the_exercises_loss_and_schedule_train_as_the_tools_own():
    """next_token_loss shifts by one itself, so it is given the windows' targets with a first column before
    them; WarmupCosine, with a floor of a tenth of the peak, is nanoGPT's schedule."""
    from keras_tx_tools.training.course_model import loss_of_targets, schedule_of_recipe
    from keras_tx_tools.training.loss import SparseCrossEntropy
    from keras_tx_tools.training.recipe import nanogpt_schedule

    training = load_submission(ROOT / "solutions")["training"]
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(2, 5, 7)).astype("float32"), rng.integers(0, 7, (2, 5))
    np.testing.assert_allclose(float(loss_of_targets(training.next_token_loss)(targets, logits)),
                               float(SparseCrossEntropy()(targets, logits)), rtol=1e-6)
    own, tools = schedule_of_recipe(training.WarmupCosine)(1e-3, 2000, 100), nanogpt_schedule(1e-3, 2000, 100)
    steps = (0, 50, 100, 1000, 1999, 2000, 2500)
    np.testing.assert_allclose([float(own(step)) for step in steps], [float(tools(step)) for step in steps], rtol=1e-6)
