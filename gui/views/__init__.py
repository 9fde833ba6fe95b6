"""The views, in display order. Each module holds one view; see base.View for the interface. The last
four (units, answers, eigenvalues, phase diagram) are off until the View menu or a lesson shows them."""
from gui.views.activation import ActivationView
from gui.views.answers import AnswersView
from gui.views.attribution import AttributionView
from gui.views.eigen import EigenView
from gui.views.layers import LayersView
from gui.views.loss import LossView
from gui.views.param_grads import ParamGradsView
from gui.views.phase import PhaseView
from gui.views.profile import ProfileView
from gui.views.unrolled import UnrolledView
from gui.views.units import UnitsView
from gui.views.waterfall import WaterfallView

ALL_VIEWS: list = [WaterfallView, ProfileView, LayersView, LossView, ParamGradsView, AttributionView,
                   ActivationView, UnrolledView, UnitsView, AnswersView, EigenView,
                   PhaseView]
